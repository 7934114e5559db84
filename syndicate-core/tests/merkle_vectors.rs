//! The shared Merkle vectors: every transparency-dev inclusion and
//! consistency probe gives its expected verdict, and the RFC 6962 reference
//! roots and proofs are reproduced byte for byte.
//!
//! The vectors live outside the repository, in `../shared/vectors/merkle`
//! next to the workspace; without them each test prints a skip line.

use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::Value;
use syndicate_core::merkle::{
    self, Frontier, consistency_ranges, decompose, fold, inclusion_ranges, leaf_hash,
    verify_consistency, verify_inclusion,
};

fn vectors() -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/vectors/merkle");
    if dir.is_dir() {
        Some(dir)
    } else {
        println!("skipping: ../shared/vectors/merkle not found");
        None
    }
}

fn json_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            json_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "json") {
            out.push(path);
        }
    }
}

fn b64(v: &Value) -> Vec<u8> {
    STANDARD.decode(v.as_str().unwrap_or("")).unwrap()
}

fn b64_list(v: &Value) -> Vec<Vec<u8>> {
    v.as_array()
        .map(|a| a.iter().map(b64).collect())
        .unwrap_or_default()
}

fn load(path: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

fn unhex(s: &Value) -> [u8; 32] {
    hex::decode(s.as_str().unwrap())
        .unwrap()
        .try_into()
        .unwrap()
}

#[test]
fn every_transparency_dev_inclusion_probe_gives_its_verdict() {
    let Some(dir) = vectors() else { return };
    let mut files = Vec::new();
    json_files(
        &dir.join("transparency-dev-merkle/testdata/inclusion"),
        &mut files,
    );
    assert_eq!(files.len(), 98, "expected the 98 inclusion probes");
    let mut valid = 0;
    for path in &files {
        let v = load(path);
        let got = verify_inclusion(
            v["leafIdx"].as_u64().unwrap(),
            v["treeSize"].as_u64().unwrap(),
            &b64(&v["leafHash"]),
            &b64_list(&v["proof"]),
            &b64(&v["root"]),
        );
        let want_err = v["wantErr"].as_bool().unwrap();
        assert_eq!(got.is_err(), want_err, "{}: {got:?}", path.display());
        valid += usize::from(!want_err);
    }
    assert_eq!(valid, 6);
}

#[test]
fn every_transparency_dev_consistency_probe_gives_its_verdict() {
    let Some(dir) = vectors() else { return };
    let mut files = Vec::new();
    json_files(
        &dir.join("transparency-dev-merkle/testdata/consistency"),
        &mut files,
    );
    assert_eq!(files.len(), 98, "expected the 98 consistency probes");
    let mut valid = 0;
    for path in &files {
        let v = load(path);
        let got = verify_consistency(
            v["size1"].as_u64().unwrap(),
            v["size2"].as_u64().unwrap(),
            &b64(&v["root1"]),
            &b64(&v["root2"]),
            &b64_list(&v["proof"]),
        );
        let want_err = v["wantErr"].as_bool().unwrap();
        assert_eq!(got.is_err(), want_err, "{}: {got:?}", path.display());
        valid += usize::from(!want_err);
    }
    assert_eq!(valid, 6);
}

/// The hash of leaves `range` of `leaves`, from the complete subtrees the
/// range decomposes into.
fn range_hash(leaves: &[[u8; 32]], range: std::ops::Range<u64>) -> [u8; 32] {
    let hashes: Vec<[u8; 32]> = decompose(range)
        .into_iter()
        .map(|id| {
            let r = id.leaves();
            merkle::root(&leaves[r.start as usize..r.end as usize])
        })
        .collect();
    fold(&hashes)
}

#[test]
fn rfc6962_reference_roots_and_proofs_are_reproduced() {
    let Some(dir) = vectors() else { return };
    let v = load(&dir.join("rfc6962-reference/rfc6962-8-leaves.json"));
    let leaves: Vec<[u8; 32]> = v["leaves_hex"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| leaf_hash(&hex::decode(l.as_str().unwrap()).unwrap()))
        .collect();
    for (got, want) in leaves.iter().zip(v["leaf_hashes"].as_array().unwrap()) {
        assert_eq!(*got, unhex(want));
    }
    let roots = v["roots"].as_array().unwrap();
    assert_eq!(roots.len(), 9);
    let mut frontier = Frontier::new();
    for r in roots {
        let n = r["tree_size"].as_u64().unwrap() as usize;
        assert_eq!(merkle::root(&leaves[..n]), unhex(&r["root"]), "root of {n}");
        assert_eq!(frontier.root(), unhex(&r["root"]), "frontier root of {n}");
        if n < leaves.len() {
            frontier.push(leaves[n]);
        }
    }
    let inclusion = v["inclusion_proofs"].as_array().unwrap();
    assert_eq!(inclusion.len(), 36);
    for p in inclusion {
        let (i, n) = (
            p["leaf_index"].as_u64().unwrap(),
            p["tree_size"].as_u64().unwrap(),
        );
        let want: Vec<[u8; 32]> = p["proof"].as_array().unwrap().iter().map(unhex).collect();
        let got: Vec<[u8; 32]> = inclusion_ranges(i, n)
            .unwrap()
            .into_iter()
            .map(|r| range_hash(&leaves, r))
            .collect();
        assert_eq!(got, want, "inclusion of {i} in {n}");
        verify_inclusion(i, n, &unhex(&p["leaf_hash"]), &got, &unhex(&p["root"])).unwrap();
    }
    let consistency = v["consistency_proofs"].as_array().unwrap();
    assert_eq!(consistency.len(), 36);
    for p in consistency {
        let (m, n) = (p["size1"].as_u64().unwrap(), p["size2"].as_u64().unwrap());
        let want: Vec<[u8; 32]> = p["proof"].as_array().unwrap().iter().map(unhex).collect();
        let got: Vec<[u8; 32]> = consistency_ranges(m, n)
            .unwrap()
            .into_iter()
            .map(|r| range_hash(&leaves, r))
            .collect();
        assert_eq!(got, want, "consistency {m} -> {n}");
        verify_consistency(m, n, &unhex(&p["root1"]), &unhex(&p["root2"]), &got).unwrap();
    }
}

#[test]
fn rfc6962_byte_leaf_roots_for_sizes_0_to_130_are_reproduced() {
    let Some(dir) = vectors() else { return };
    let v = load(&dir.join("rfc6962-reference/rfc6962-byte-leaves-roots.json"));
    let leaves: Vec<[u8; 32]> = (0..=255u8).map(|i| leaf_hash(&[i])).collect();
    let roots = v["roots"].as_array().unwrap();
    assert_eq!(roots.len(), 131);
    let mut frontier = Frontier::new();
    for r in roots {
        let n = r["tree_size"].as_u64().unwrap() as usize;
        assert_eq!(frontier.root(), unhex(&r["root"]), "root of {n}");
        frontier.push(leaves[n]);
    }
}
