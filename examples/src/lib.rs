//! Reference integrations of syndicate. The programs are the binaries in
//! `src/bin/`; this library only holds what they share.
#![forbid(unsafe_code)]
