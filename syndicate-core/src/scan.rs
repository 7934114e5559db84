//! The one way core reads a chain: page after page until an empty page,
//! verifying every event before anyone looks at it.
//!
//! A backend may return fewer events than asked for without being at the
//! end, so only an empty page ends a scan, unless the store says its pages
//! reach the end ([`EventStore::pages_reach_the_end`]) or the scan's upper
//! bound is reached. Pages are capped in bytes as well as in count
//! ([`PAGE_BYTES`]): each page is read with [`EventStore::read_bounded`],
//! which stops reading rows once the page holds that many bytes, and after
//! a page of large events the next page asks for fewer. At most three
//! pages are held at once (one being verified, one waiting, the next being
//! read), so memory stays near `3 × PAGE_BYTES` plus one event whatever the
//! event sizes. Hashing runs off the async executor (on the blocking pool
//! of the tokio runtime when there is one) while the next pages are read,
//! except for pages of at most 64 KiB (a gate catching up on a few events),
//! which take microseconds to check in place.

use crate::event::Event;
use crate::seal::Head;
use crate::store::{EventStore, StoreError};
use crate::verify::{Check, VERIFY_PAGE, Verifier, Violation};

/// Bytes of canonical events a scan aims to hold per page.
pub const PAGE_BYTES: usize = 8 * 1024 * 1024;

/// How a scan ended.
#[derive(Debug)]
pub struct ScanEnd {
    /// The verifier, positioned after the last event that verified.
    pub verifier: Verifier,
    /// The first violation, when one stopped the scan.
    pub violation: Option<Violation>,
}

impl ScanEnd {
    /// The last verified head.
    pub fn head(&self) -> Option<Head> {
        self.verifier.summary().head
    }
}

/// The next page size: as many events as fit [`PAGE_BYTES`] at the size of
/// the events just read, between 1 and [`VERIFY_PAGE`].
fn next_limit(page: &[Event]) -> usize {
    if page.is_empty() {
        return VERIFY_PAGE;
    }
    let bytes: usize = page.iter().map(|e| e.canonical.len().max(1)).sum();
    let per_event = bytes.div_ceil(page.len());
    (PAGE_BYTES / per_event).clamp(1, VERIFY_PAGE)
}

/// Clips a count to the events left before `upto` (inclusive).
fn clip(limit: usize, next: u64, upto: Option<u64>) -> usize {
    match upto {
        Some(upto) if next > upto => 0,
        Some(upto) => {
            let left = (upto - next).saturating_add(1);
            limit.min(usize::try_from(left).unwrap_or(usize::MAX))
        }
        None => limit,
    }
}

/// Pages up to this many bytes are checked in place: hashing them takes
/// microseconds, less than the hop to another thread would.
const INLINE_PAGE_BYTES: usize = 64 * 1024;

/// Checks a page, off the executor when a tokio runtime is running and the
/// page is larger than [`INLINE_PAGE_BYTES`]; returns the verifier, the
/// page and how many events verified (with the violation of the first that
/// did not).
async fn check_page(
    mut verifier: Verifier,
    events: Vec<Event>,
) -> (Verifier, Vec<Event>, Result<(), Violation>) {
    let small = events.iter().map(|e| e.canonical.len()).sum::<usize>() <= INLINE_PAGE_BYTES;
    let work = move || {
        let result = verifier.check_page(&events);
        (verifier, events, result)
    };
    match tokio::runtime::Handle::try_current() {
        Ok(_) if small => work(),
        Ok(handle) => match handle.spawn_blocking(work).await {
            Ok(out) => out,
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(e) => panic!("the verification task was cancelled: {e}"),
        },
        Err(_) => work(),
    }
}

/// Reads and verifies a store's chain from where `verifier` stands up to
/// `upto` (inclusive; the end of the chain when `None`), handing every
/// verified event to `visit` in seq order. Stops at the first violation; an
/// unreadable row ([`StoreError::Corrupt`]) is a [`Check::Row`] violation
/// after the rows before it are verified and visited.
///
/// Reading and checking run side by side: the reading side asks for the
/// next page as soon as the last one arrived, while the checking side
/// verifies the page before it, so neither waits for the other while there
/// is work; at most one read page waits between them.
///
/// # Errors
/// [`StoreError`] when the store cannot be read.
pub async fn scan_verified<S, F>(
    store: &S,
    verifier: Verifier,
    upto: Option<u64>,
    mut visit: F,
) -> Result<ScanEnd, StoreError>
where
    S: EventStore + ?Sized,
    F: FnMut(&Event),
{
    let (pages, mut arrived) = tokio::sync::mpsc::channel(1);
    let reading = read_ahead(store, verifier.next_seq(), upto, pages);
    let checking = async move {
        let mut verifier = verifier;
        loop {
            let events = match arrived.recv().await {
                // The reading side ends after the last page.
                None => {
                    return Ok(ScanEnd {
                        verifier,
                        violation: None,
                    });
                }
                Some(Ok(events)) => events,
                Some(Err(StoreError::Corrupt { seq, reason, .. })) => {
                    return corrupt_row(store, verifier, seq, reason, visit).await;
                }
                Some(Err(e)) => return Err(e),
            };
            let (checked, events, result) = check_page(verifier, events).await;
            verifier = checked;
            let verified = usize::try_from(
                verifier
                    .next_seq()
                    .saturating_sub(events.first().map_or(0, |e| e.seq)),
            )
            .unwrap_or(usize::MAX);
            for event in events.iter().take(verified) {
                visit(event);
            }
            if let Err(violation) = result {
                return Ok(ScanEnd {
                    verifier,
                    violation: Some(violation),
                });
            }
        }
    };
    until_first_ends(checking, reading).await
}

/// The reading side of a scan: reads page after page from `from` and hands
/// each non-empty one over, until an empty page, the last page
/// ([`read_clipped`]), an error (handed over too), or the checking side
/// hanging up.
async fn read_ahead<S: EventStore + ?Sized>(
    store: &S,
    mut from: u64,
    upto: Option<u64>,
    pages: tokio::sync::mpsc::Sender<Result<Vec<Event>, StoreError>>,
) {
    let mut limit = VERIFY_PAGE;
    loop {
        let (events, last_page) = match read_clipped(store, from, limit, upto).await {
            Ok(read) => read,
            Err(e) => {
                let _ = pages.send(Err(e)).await;
                return;
            }
        };
        let Some(last) = events.last() else {
            return;
        };
        limit = next_limit(&events);
        from = last.seq.saturating_add(1);
        if pages.send(Ok(events)).await.is_err() || last_page {
            return;
        }
    }
}

/// Runs `main` and `side` together and returns `main`'s output as soon as
/// it has one, dropping `side` wherever it stands; polls `side` first so
/// its I/O starts before `main` does CPU work.
async fn until_first_ends<M: Future, D: Future<Output = ()>>(main: M, side: D) -> M::Output {
    let mut main = std::pin::pin!(main);
    let mut side = std::pin::pin!(side);
    let mut side_done = false;
    std::future::poll_fn(|cx| {
        if !side_done {
            side_done = side.as_mut().poll(cx).is_ready();
        }
        main.as_mut().poll(cx)
    })
    .await
}

/// Reads a page, honouring the upper bound: events past `upto` are
/// dropped. Also says whether this is the last page: nothing is left
/// before the bound (then nothing is read, and a page that reaches the
/// bound leaves nothing for the next call), or the store says a short page
/// is the end ([`EventStore::pages_reach_the_end`]) and this one is short
/// in both count and bytes.
async fn read_clipped<S: EventStore + ?Sized>(
    store: &S,
    from: u64,
    limit: usize,
    upto: Option<u64>,
) -> Result<(Vec<Event>, bool), StoreError> {
    let limit = clip(limit, from, upto);
    if limit == 0 {
        return Ok((Vec::new(), true));
    }
    let mut events = store.read_bounded(from, limit, PAGE_BYTES).await?;
    let bytes: usize = events.iter().map(|e| e.canonical.len()).sum();
    let last = store.pages_reach_the_end() && events.len() < limit && bytes < PAGE_BYTES;
    if let Some(upto) = upto {
        events.retain(|e| e.seq <= upto);
    }
    Ok((events, last))
}

/// Verifies the readable rows before an unreadable one, then reports it.
async fn corrupt_row<S, F>(
    store: &S,
    mut verifier: Verifier,
    seq: u64,
    reason: String,
    mut visit: F,
) -> Result<ScanEnd, StoreError>
where
    S: EventStore + ?Sized,
    F: FnMut(&Event),
{
    while verifier.next_seq() < seq {
        let events = store.read(verifier.next_seq(), 1).await?;
        let Some(event) = events.first() else { break };
        if event.seq >= seq {
            break;
        }
        if let Err(violation) = verifier.check(event) {
            return Ok(ScanEnd {
                verifier,
                violation: Some(violation),
            });
        }
        visit(event);
    }
    Ok(ScanEnd {
        verifier,
        violation: Some(Violation {
            seq,
            check: Check::Row,
            expected: "a readable row".into(),
            found: reason,
        }),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{Actor, ChainId, EventDraft, EventKind};
    use crate::memory::MemoryStore;
    use crate::store::{EventStoreExt, Query};
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A memory store that counts its reads and says whether its pages
    /// reach the end as told.
    #[derive(Debug)]
    struct Counted {
        inner: MemoryStore,
        says_end: bool,
        reads: AtomicUsize,
        /// A row that reads as corrupt.
        corrupt_at: Option<u64>,
    }

    #[async_trait::async_trait]
    impl EventStore for Counted {
        fn chain(&self) -> &ChainId {
            self.inner.chain()
        }
        fn pages_reach_the_end(&self) -> bool {
            self.says_end
        }
        async fn append(&self, drafts: &[EventDraft]) -> Result<Vec<Event>, StoreError> {
            self.inner.append(drafts).await
        }
        async fn head(&self) -> Result<Option<Head>, StoreError> {
            self.inner.head().await
        }
        async fn read(&self, from_seq: u64, limit: usize) -> Result<Vec<Event>, StoreError> {
            self.reads.fetch_add(1, Ordering::SeqCst);
            let events = self.inner.read(from_seq, limit).await?;
            match self.corrupt_at {
                Some(seq) if events.iter().any(|e| e.seq == seq) => Err(StoreError::Corrupt {
                    store: "counted",
                    seq,
                    reason: "flipped".into(),
                }),
                _ => Ok(events),
            }
        }
        async fn query(&self, query: &Query) -> Result<Vec<Event>, StoreError> {
            self.inner.query(query).await
        }
    }

    async fn chain_of(events: usize, says_end: bool) -> Counted {
        let store = Counted {
            inner: MemoryStore::new(ChainId::new("scan").unwrap()),
            says_end,
            reads: AtomicUsize::new(0),
            corrupt_at: None,
        };
        for n in 0..events {
            let draft = EventDraft::new(
                format!("r{n}"),
                EventKind::GateRecovered,
                Actor::system("gate"),
                serde_json::json!({"reason": "x"}),
            );
            store.append_one(draft).await.unwrap();
        }
        store
    }

    /// Scans the whole chain (or up to `upto`) and returns the seqs visited
    /// and the reads it took.
    async fn scan(store: &Counted, upto: Option<u64>) -> (Vec<u64>, usize) {
        store.reads.store(0, Ordering::SeqCst);
        let mut seen = Vec::new();
        let verifier = Verifier::new(store.chain().clone());
        let end = scan_verified(store, verifier, upto, |e| seen.push(e.seq))
            .await
            .unwrap();
        assert!(end.violation.is_none(), "{:?}", end.violation);
        (seen, store.reads.load(Ordering::SeqCst))
    }

    #[tokio::test]
    async fn a_short_page_ends_the_scan_only_when_the_store_says_pages_reach_the_end() {
        let says = chain_of(10, true).await;
        let (seen, reads) = scan(&says, None).await;
        assert_eq!(seen.len(), 10);
        assert_eq!(
            reads, 1,
            "the short page was the end: no read to confirm it"
        );

        let silent = chain_of(10, false).await;
        let (seen_silent, reads) = scan(&silent, None).await;
        assert_eq!(seen_silent.len(), 10);
        assert_eq!(
            reads, 2,
            "a store that does not say so gets the empty page read"
        );
    }

    #[tokio::test]
    async fn the_rows_before_an_unreadable_one_are_verified_then_it_is_reported() {
        let mut store = chain_of(6, true).await;
        let (all, _) = scan(&store, None).await;
        store.corrupt_at = Some(all[3]);
        let mut seen = Vec::new();
        let verifier = Verifier::new(store.chain().clone());
        let end = scan_verified(&store, verifier, None, |e| seen.push(e.seq))
            .await
            .unwrap();
        assert_eq!(seen, all[..3]);
        assert_eq!(end.head().map(|h| h.seq), Some(all[2]));
        let violation = end.violation.expect("the unreadable row is reported");
        assert_eq!(violation.seq, all[3]);
        assert_eq!(violation.check, Check::Row);
        assert_eq!(violation.found, "flipped");
    }

    #[tokio::test]
    async fn a_full_page_is_never_taken_for_the_end() {
        let store = chain_of(VERIFY_PAGE + 1, true).await;
        let (seen, reads) = scan(&store, None).await;
        assert_eq!(seen.len(), VERIFY_PAGE + 1);
        assert_eq!(reads, 2, "a full page, then the short one that ends it");
    }

    /// A store that reads back the events it was given, as they are.
    #[derive(Debug)]
    struct Given(ChainId, Vec<Event>);

    #[async_trait::async_trait]
    impl EventStore for Given {
        fn chain(&self) -> &ChainId {
            &self.0
        }
        fn pages_reach_the_end(&self) -> bool {
            true
        }
        async fn append(&self, _: &[EventDraft]) -> Result<Vec<Event>, StoreError> {
            unreachable!("scans never append")
        }
        async fn head(&self) -> Result<Option<Head>, StoreError> {
            unreachable!("scans read pages only")
        }
        async fn read(&self, from_seq: u64, limit: usize) -> Result<Vec<Event>, StoreError> {
            let from = self.1.iter().take_while(|e| e.seq < from_seq).count();
            Ok(self.1.iter().skip(from).take(limit).cloned().collect())
        }
        async fn query(&self, _: &Query) -> Result<Vec<Event>, StoreError> {
            unreachable!("scans read pages only")
        }
    }

    #[tokio::test]
    async fn a_page_cut_at_the_byte_cap_is_never_taken_for_the_end() {
        let store = chain_of(1, true).await;
        let event = store.inner.read(0, 1).await.unwrap().remove(0);
        let half_page: Vec<Event> = (0..4)
            .map(|seq| Event {
                seq,
                canonical: vec![b' '; PAGE_BYTES / 2],
                ..event.clone()
            })
            .collect();
        let given = Given(store.chain().clone(), half_page);
        let (page, last) = read_clipped(&given, 0, VERIFY_PAGE, None).await.unwrap();
        assert_eq!(page.len(), 2, "the byte cap cut the page");
        assert!(!last, "a page cut at the cap is not the end");
        let (page, last) = read_clipped(&given, 2, VERIFY_PAGE, None).await.unwrap();
        assert_eq!(page.len(), 2);
        assert!(!last, "still at the cap, still not the end");
        let (page, last) = read_clipped(&given, 3, VERIFY_PAGE, None).await.unwrap();
        assert_eq!(page.len(), 1);
        assert!(last, "short in count and bytes: the end");
    }

    #[tokio::test]
    async fn reaching_the_upper_bound_ends_the_scan_without_another_read() {
        let store = chain_of(10, false).await;
        let (all, _) = scan(&store, None).await;
        let upto = all[4];
        let (seen, reads) = scan(&store, Some(upto)).await;
        assert_eq!(seen, all[..5]);
        assert_eq!(reads, 1);
    }

    #[test]
    fn clip_stops_at_the_upper_bound() {
        assert_eq!(clip(1000, 5, Some(7)), 3);
        assert_eq!(clip(1000, 8, Some(7)), 0);
        assert_eq!(clip(10, 0, None), 10);
        assert_eq!(clip(1000, 7, Some(7)), 1, "the bound itself is read");
    }

    #[tokio::test]
    async fn after_a_page_of_large_events_the_next_page_asks_for_fewer() {
        let store = chain_of(1, true).await;
        let mut event = store.inner.read(0, 1).await.unwrap().remove(0);
        assert_eq!(next_limit(&[]), VERIFY_PAGE);
        assert_eq!(
            next_limit(std::slice::from_ref(&event)),
            VERIFY_PAGE,
            "small events: a full page"
        );
        event.canonical = vec![b' '; 1024 * 1024];
        assert_eq!(
            next_limit(&[event.clone(), event.clone()]),
            8,
            "8 MiB of 1 MiB events"
        );
        event.canonical = vec![b' '; 3 * PAGE_BYTES];
        assert_eq!(
            next_limit(&[event]),
            1,
            "an event larger than a page: one at a time"
        );
    }
}
