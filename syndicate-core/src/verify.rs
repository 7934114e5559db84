//! Integrity verification: re-hash every stored event and check that the
//! chain is one unbroken, ordered sequence whose columns match its bytes.

use std::fmt;

use crate::digest::{Digest, tags};
use crate::event::{ChainId, ENVELOPE_VERSION, Event};
use crate::header::{Header, HeaderError, read_header};
use crate::seal::Head;
use crate::store::{EventStore, StoreError};
use crate::timestamp::Timestamp;

/// Events read per page when verifying a store.
pub const VERIFY_PAGE: usize = 1000;

/// Which check an event failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Check {
    /// The store could not return the row as an event.
    Row,
    /// The seq is not the next one (a gap, a duplicate, or the seq column
    /// differs from the seq inside the bytes).
    Sequence,
    /// The stored hash is not the hash of the stored bytes.
    Hash,
    /// The bytes are not a v1 envelope.
    Format,
    /// The envelope names another chain.
    Chain,
    /// `prev` is not the hash of the previous event.
    Link,
    /// `at` is earlier than the previous event's.
    Time,
    /// An extracted column differs from the field inside the bytes.
    Column(&'static str),
    /// The chain does not end at the expected head hash.
    Head,
}

impl fmt::Display for Check {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Check::Row => f.write_str("row"),
            Check::Sequence => f.write_str("sequence"),
            Check::Hash => f.write_str("hash"),
            Check::Format => f.write_str("format"),
            Check::Chain => f.write_str("chain"),
            Check::Link => f.write_str("prev link"),
            Check::Time => f.write_str("time order"),
            Check::Column(name) => write!(f, "column {name}"),
            Check::Head => f.write_str("head"),
        }
    }
}

/// The first thing found wrong with a chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// The seq at which the chain stops being trustworthy.
    pub seq: u64,
    /// The check that failed.
    pub check: Check,
    /// What the verifier expected.
    pub expected: String,
    /// What it found.
    pub found: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "seq {}: {} check failed: expected {}, found {}",
            self.seq, self.check, self.expected, self.found
        )
    }
}

/// What was verified.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Summary {
    /// Number of events verified by this run.
    pub events: u64,
    /// The last verified event.
    pub head: Option<Head>,
    /// `at` of the first event verified by this run.
    pub first_at: Option<Timestamp>,
}

/// The outcome of verifying a chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// Everything verified before the first violation (or all of it).
    pub summary: Summary,
    /// The first violation, if any.
    pub violation: Option<Violation>,
}

impl Report {
    /// True when no violation was found.
    pub fn is_intact(&self) -> bool {
        self.violation.is_none()
    }

    /// Checks that an intact chain ends at `expected` (a head hash recorded
    /// elsewhere); turns the report into a [`Check::Head`] violation if not.
    pub fn expect_head(mut self, expected: &Digest) -> Self {
        if self.violation.is_none() {
            let found = self.summary.head.map(|h| h.hash);
            if found.as_ref() != Some(expected) {
                self.violation = Some(Violation {
                    seq: self.summary.head.map_or(0, |h| h.seq),
                    check: Check::Head,
                    expected: expected.to_string(),
                    found: found.map_or_else(|| "an empty chain".to_owned(), |d| d.to_string()),
                });
            }
        }
        self
    }
}

/// A streaming verifier: feed it events in seq order with
/// [`check`](Verifier::check); it keeps constant state.
#[derive(Debug, Clone)]
pub struct Verifier {
    chain: ChainId,
    next_seq: u64,
    prev: Digest,
    last_at: Option<Timestamp>,
    summary: Summary,
}

impl Verifier {
    /// Verifies a chain from its first event.
    pub fn new(chain: ChainId) -> Self {
        Verifier {
            chain,
            next_seq: 0,
            prev: Digest::ZERO,
            last_at: None,
            summary: Summary::default(),
        }
    }

    /// Continues after a head that was verified before.
    pub fn resume(chain: ChainId, head: &Head) -> Self {
        Verifier {
            chain,
            next_seq: head.seq + 1,
            prev: head.hash,
            last_at: Some(head.at),
            summary: Summary {
                events: 0,
                head: Some(*head),
                first_at: None,
            },
        }
    }

    /// The seq the next event must have.
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// What has been verified so far.
    pub fn summary(&self) -> &Summary {
        &self.summary
    }

    /// Checks the next event.
    ///
    /// # Errors
    /// The [`Violation`] found; the verifier's state is then unchanged.
    pub fn check(&mut self, event: &Event) -> Result<(), Violation> {
        self.check_inspected(event, Inspected::of(event))
    }

    /// [`check`](Verifier::check) with the per-event work (hashing, reading
    /// the header) already done, possibly on another thread.
    fn check_inspected(
        &mut self,
        event: &Event,
        inspected: Inspected<'_>,
    ) -> Result<(), Violation> {
        let Inspected { hash, header } = inspected;
        let seq = self.next_seq;
        let fail = |check: Check, expected: String, found: String| Violation {
            seq,
            check,
            expected,
            found,
        };
        if event.seq != seq {
            let found = if event.seq > seq {
                format!("seq {} (event {seq} is missing)", event.seq)
            } else {
                format!("seq {} again", event.seq)
            };
            return Err(fail(Check::Sequence, format!("seq {seq}"), found));
        }
        if hash != event.hash {
            return Err(fail(
                Check::Hash,
                format!("stored hash {}", event.hash),
                format!("bytes hashing to {hash}"),
            ));
        }
        let header = header.map_err(|e| {
            fail(
                Check::Format,
                format!(
                    "a canonical v1 envelope ({} at byte {})",
                    e.expected, e.offset
                ),
                "bytes that are not one".to_owned(),
            )
        })?;
        if header.v != ENVELOPE_VERSION {
            return Err(fail(Check::Format, "v 1".into(), format!("v {}", header.v)));
        }
        if header.chain != self.chain.as_str() {
            return Err(fail(
                Check::Chain,
                format!("chain {:?}", self.chain.as_str()),
                format!("chain {:?}", header.chain),
            ));
        }
        if header.seq != seq {
            return Err(fail(
                Check::Sequence,
                format!("seq {seq} inside the bytes"),
                format!("seq {}", header.seq),
            ));
        }
        if header.prev != self.prev {
            return Err(fail(
                Check::Link,
                format!("prev {}", self.prev),
                format!("prev {}", header.prev),
            ));
        }
        let at: Timestamp = header.at.parse().map_err(|_| {
            fail(
                Check::Format,
                "at as YYYY-MM-DDTHH:MM:SS.ffffffZ".into(),
                format!("at {:?}", header.at),
            )
        })?;
        if let Some(last) = self.last_at
            && at < last
        {
            return Err(fail(
                Check::Time,
                format!("at >= {last}"),
                format!("at {at}"),
            ));
        }
        let c = &event.columns;
        let columns: [(&'static str, Option<&str>, Option<&str>); 6] = [
            ("at", Some(header.at.as_ref()), Some(c.at.as_str())),
            (
                "session",
                Some(header.session.as_ref()),
                Some(c.session.as_str()),
            ),
            ("kind", Some(header.kind.as_ref()), Some(c.kind.as_str())),
            (
                "actor",
                Some(header.actor_id.as_ref()),
                Some(c.actor.as_str()),
            ),
            (
                "request_id",
                header.request_id.as_deref(),
                c.request_id.as_deref(),
            ),
            ("once", header.once.as_deref(), c.once.as_deref()),
        ];
        for (name, inside, column) in columns {
            if inside != column {
                return Err(fail(
                    Check::Column(name),
                    format!("{name} {} (inside the bytes)", show(inside)),
                    format!("{name} column {}", show(column)),
                ));
            }
        }
        self.next_seq = seq + 1;
        self.prev = hash;
        self.last_at = Some(at);
        self.summary.events += 1;
        self.summary.head = Some(Head { seq, hash, at });
        if self.summary.first_at.is_none() {
            self.summary.first_at = Some(at);
        }
        Ok(())
    }

    /// Checks a page of events in order, hashing long pages on several
    /// threads; stops at the first violation.
    pub(crate) fn check_page(&mut self, events: &[Event]) -> Result<(), Violation> {
        for (event, inspected) in events.iter().zip(inspect_page(events)) {
            self.check_inspected(event, inspected)?;
        }
        Ok(())
    }

    /// The report for everything checked so far.
    pub fn report(&self, violation: Option<Violation>) -> Report {
        Report {
            summary: self.summary.clone(),
            violation,
        }
    }
}

fn show(value: Option<&str>) -> String {
    value.map_or_else(|| "null".to_owned(), |v| format!("{v:?}"))
}

/// The per-event work that does not depend on the chain before it: the
/// hash of the bytes and the envelope header read from them.
struct Inspected<'a> {
    hash: Digest,
    header: Result<Header<'a>, HeaderError>,
}

impl<'a> Inspected<'a> {
    fn of(event: &'a Event) -> Self {
        Inspected {
            hash: Digest::of_canonical(tags::EVENT, &event.canonical),
            header: read_header(&event.canonical),
        }
    }
}

/// Pages at least this long are inspected on several threads.
const PARALLEL_MIN: usize = 256;

/// Threads that inspect a long page: the machine's cores, at most 4. Asked
/// once per process: on Linux the answer reads the cgroup's CPU quota from
/// several files, which costs more than checking a short page.
fn inspect_threads() -> usize {
    static THREADS: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *THREADS.get_or_init(|| std::thread::available_parallelism().map_or(1, |n| n.get().min(4)))
}

/// Inspects a page of events, spreading the hashing over the machine's
/// cores (at most 4 threads) for long pages; the order is kept.
fn inspect_page(events: &[Event]) -> Vec<Inspected<'_>> {
    if events.len() < PARALLEL_MIN {
        return events.iter().map(Inspected::of).collect();
    }
    let threads = inspect_threads();
    if threads < 2 {
        return events.iter().map(Inspected::of).collect();
    }
    let chunk = events.len().div_ceil(threads);
    std::thread::scope(|scope| {
        let workers: Vec<_> = events
            .chunks(chunk)
            .skip(1)
            .map(|part| scope.spawn(move || part.iter().map(Inspected::of).collect::<Vec<_>>()))
            .collect();
        let mut out: Vec<Inspected<'_>> = events[..chunk.min(events.len())]
            .iter()
            .map(Inspected::of)
            .collect();
        for worker in workers {
            match worker.join() {
                Ok(part) => out.extend(part),
                Err(panic) => std::panic::resume_unwind(panic),
            }
        }
        out
    })
}

/// Verifies a store's chain, from genesis or after a head verified before,
/// through the [scan driver](crate::scan): pages until an empty page, capped
/// in bytes, hashed off the async executor while the next page is read.
/// Events appended while it runs are verified too, up to the last page read.
///
/// # Errors
/// [`StoreError`] when the store cannot be read, except
/// [`StoreError::Corrupt`], which becomes a [`Check::Row`] violation.
pub async fn verify_store<S: EventStore + ?Sized>(
    store: &S,
    from: Option<&Head>,
) -> Result<Report, StoreError> {
    let chain = store.chain().clone();
    let verifier = match from {
        Some(head) => Verifier::resume(chain, head),
        None => Verifier::new(chain),
    };
    let end = crate::scan::scan_verified(store, verifier, None, |_| {}).await?;
    Ok(end.verifier.report(end.violation))
}
