//! One module per command group.

pub mod action;
pub mod agents;
pub mod approve;
pub mod audit;
pub mod checkpoint;
pub mod evidence;
pub mod input;
pub mod key;
pub mod report;
pub mod signed_report;
pub mod store;
pub mod story;
