//! The fast Merkle code against a slow by-the-definition reference: RFC 9162
//! §2.1.1 MTH, §2.1.3.1 PATH and §2.1.4.1 SUBPROOF written recursively over
//! the leaf list, exactly as the RFC states them.

use proptest::prelude::*;
use syndicate_core::merkle::{
    self, Frontier, consistency_ranges, decompose, fold, inclusion_ranges, leaf_hash, node_hash,
    verify_consistency, verify_inclusion,
};

type H = [u8; 32];

/// Largest power of two strictly less than n.
fn k_of(n: usize) -> usize {
    let mut k = 1;
    while k * 2 < n {
        k *= 2;
    }
    k
}

fn mth(d: &[H]) -> H {
    match d.len() {
        0 => merkle::EMPTY_ROOT,
        1 => d[0],
        n => {
            let k = k_of(n);
            node_hash(&mth(&d[..k]), &mth(&d[k..]))
        }
    }
}

fn path(m: usize, d: &[H]) -> Vec<H> {
    let n = d.len();
    if n <= 1 {
        return vec![];
    }
    let k = k_of(n);
    if m < k {
        let mut p = path(m, &d[..k]);
        p.push(mth(&d[k..]));
        p
    } else {
        let mut p = path(m - k, &d[k..]);
        p.push(mth(&d[..k]));
        p
    }
}

fn subproof(m: usize, d: &[H], b: bool) -> Vec<H> {
    let n = d.len();
    if m == n {
        return if b { vec![] } else { vec![mth(d)] };
    }
    let k = k_of(n);
    if m <= k {
        let mut p = subproof(m, &d[..k], b);
        p.push(mth(&d[k..]));
        p
    } else {
        let mut p = subproof(m - k, &d[k..], false);
        p.push(mth(&d[..k]));
        p
    }
}

fn leaves(n: usize) -> Vec<H> {
    (0..n)
        .map(|i| leaf_hash(&(i as u64).to_be_bytes()))
        .collect()
}

fn range_hash(d: &[H], r: std::ops::Range<u64>) -> H {
    let hs: Vec<H> = decompose(r)
        .iter()
        .map(|id| {
            let l = id.leaves();
            mth(&d[l.start as usize..l.end as usize])
        })
        .collect();
    fold(&hs)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn frontier_root_equals_the_recursive_definition(n in 0usize..300) {
        let d = leaves(n);
        let mut f = Frontier::new();
        for l in &d {
            f.push(*l);
        }
        prop_assert_eq!(f.root(), mth(&d));
        prop_assert_eq!(merkle::root(&d), mth(&d));
        // The frontier's nodes are exactly the decomposition of 0..n.
        let ids: Vec<_> = f.nodes().iter().map(|(id, _)| *id).collect();
        prop_assert_eq!(ids, decompose(0..n as u64));
    }

    #[test]
    fn inclusion_proofs_equal_path_and_verify(n in 1usize..200, seed in any::<u64>()) {
        let d = leaves(n);
        let m = (seed % n as u64) as usize;
        let got: Vec<H> = inclusion_ranges(m as u64, n as u64).unwrap()
            .into_iter().map(|r| range_hash(&d, r)).collect();
        prop_assert_eq!(&got, &path(m, &d));
        prop_assert!(verify_inclusion(m as u64, n as u64, &d[m], &got, &mth(&d)).is_ok());
        // Any other leaf, or the proof for another size, fails.
        let other = (m + 1) % n;
        if other != m {
            prop_assert!(verify_inclusion(m as u64, n as u64, &d[other], &got, &mth(&d)).is_err());
        }
    }

    #[test]
    fn consistency_proofs_equal_subproof_and_verify(n in 1usize..200, seed in any::<u64>()) {
        let d = leaves(n);
        let m = 1 + (seed % n as u64) as usize;
        let got: Vec<H> = consistency_ranges(m as u64, n as u64).unwrap()
            .into_iter().map(|r| range_hash(&d, r)).collect();
        let want = if m == n { vec![] } else { subproof(m, &d, true) };
        prop_assert_eq!(&got, &want);
        prop_assert!(verify_consistency(m as u64, n as u64, &mth(&d[..m]), &mth(&d), &got).is_ok());
        // A different old tree of the same size fails.
        let mut forked = d[..m].to_vec();
        forked[m - 1] = leaf_hash(b"forked");
        prop_assert!(verify_consistency(m as u64, n as u64, &mth(&forked), &mth(&d), &got).is_err());
    }
}
