//! Writing a batch so that one refused member cannot fail the others.
//!
//! Group commit puts many requests into one transaction, and the recorder
//! writes many outcomes at once. If the store refuses one row, the whole
//! transaction fails; [`apply_isolating`] then splits the batch and tries
//! the halves, until every member has its own answer. Only errors of the
//! data ([`StoreError::Rejected`]) are split: an unavailable store fails
//! every member at once, since splitting cannot help.

use crate::error::StoreError;
use std::future::Future;
use std::ops::Range;

/// The answer of [`apply_isolating`]: one result per item, and what each
/// call that succeeded returned (a call covers one or more items).
#[derive(Debug)]
pub struct Isolated<V> {
    pub results: Vec<Result<(), StoreError>>,
    pub applied: Vec<V>,
}

/// Applies `apply` to all of `items` in one call when it can, and returns one
/// result per item. A batch refused with [`StoreError::Rejected`] is bisected,
/// so a batch of `n` with one bad member costs about `2·log2(n)` extra calls.
pub async fn apply_isolating<'a, T, V, F, Fut>(items: &'a [T], mut apply: F) -> Isolated<V>
where
    F: FnMut(&'a [T]) -> Fut,
    Fut: Future<Output = Result<V, StoreError>>,
{
    let mut results: Vec<Option<Result<(), StoreError>>> = vec![None; items.len()];
    let mut applied = Vec::new();
    let mut pending: Vec<Range<usize>> = Vec::new();
    pending.push(0..items.len());
    while let Some(range) = pending.pop() {
        if range.is_empty() {
            continue;
        }
        match apply(&items[range.clone()]).await {
            Ok(value) => {
                results[range].fill(Some(Ok(())));
                applied.push(value);
            }
            Err(e) if e.is_rejection() && range.len() > 1 => {
                let mid = range.start + range.len() / 2;
                pending.push(mid..range.end);
                pending.push(range.start..mid);
            }
            Err(e) => results[range].fill(Some(Err(e))),
        }
    }
    Isolated {
        results: results.into_iter().map(|r| r.unwrap_or(Ok(()))).collect(),
        applied,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    fn block_on<F: Future>(f: F) -> F::Output {
        // The futures here never wait, so one poll with a no-op waker ends them.
        let mut f = std::pin::pin!(f);
        let waker = std::task::Waker::noop();
        match f.as_mut().poll(&mut std::task::Context::from_waker(waker)) {
            std::task::Poll::Ready(v) => v,
            std::task::Poll::Pending => unreachable!("the test futures are ready at once"),
        }
    }

    #[test]
    fn a_refused_member_fails_alone() {
        let items: Vec<u32> = (0..13).collect();
        let calls = Cell::new(0);
        let results = block_on(apply_isolating(&items, |batch: &[u32]| {
            calls.set(calls.get() + 1);
            let refused = batch.contains(&7);
            async move {
                if refused {
                    Err(StoreError::Rejected("7 is refused".into()))
                } else {
                    Ok(())
                }
            }
        }))
        .results;
        for (i, r) in results.iter().enumerate() {
            assert_eq!(r.is_err(), i == 7, "item {i}: {r:?}");
        }
        assert!(calls.get() <= 1 + 2 * 4, "{} calls", calls.get());
    }

    #[test]
    fn an_unavailable_store_fails_everyone_without_splitting() {
        let items = [1, 2, 3, 4];
        let calls = Cell::new(0);
        let results = block_on(apply_isolating(&items, |_: &[i32]| {
            calls.set(calls.get() + 1);
            async { Err::<(), _>(StoreError::Unavailable("down".into())) }
        }))
        .results;
        assert_eq!(calls.get(), 1);
        assert!(results
            .iter()
            .all(|r| matches!(r, Err(StoreError::Unavailable(_)))));
    }

    #[test]
    fn several_refused_members_each_get_their_error() {
        let items: Vec<u32> = (0..8).collect();
        let results = block_on(apply_isolating(&items, |batch: &[u32]| {
            let refused = batch.iter().any(|i| i % 3 == 0);
            async move {
                if refused {
                    Err(StoreError::Rejected("multiple of three".into()))
                } else {
                    Ok(())
                }
            }
        }))
        .results;
        let failed: Vec<usize> = (0..8).filter(|i| results[*i].is_err()).collect();
        assert_eq!(failed, [0, 3, 6]);
    }
}
