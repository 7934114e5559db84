//! The auditor's evidence through the real binary, over one fixture chain
//! built by the real gate (`fixture`): `audit changes` in every format
//! against golden files, the CSV read back by a CSV parser, the control
//! filter, reproducible samples, `audit replay`, `audit commits` and
//! `git link` on a real git repository, and the story check of annotation
//! references.

mod fixture;

use std::collections::BTreeSet;

use fixture::{Fixture, JUNIT, Result, ok, syndicate, text};
use serde_json::Value;
use syndicate_core::Digest;
use syndicate_core::annotation::REPORT_TAG;

fn changes(f: &Fixture, extra: &[&str]) -> String {
    let mut args = vec!["audit", "changes"];
    args.extend(f.store_args());
    args.extend(extra);
    ok(&args)
}

fn changes_json(f: &Fixture, extra: &[&str]) -> Result<Value> {
    let mut args = vec!["--format", "json"];
    args.extend(extra);
    Ok(serde_json::from_str(&changes(f, &args))?)
}

fn ids_of(doc: &Value) -> Vec<String> {
    doc["changes"]
        .as_array()
        .expect("changes")
        .iter()
        .map(|c| c["request_id"].as_str().expect("id").to_owned())
        .collect()
}

fn change<'a>(doc: &'a Value, id: &str) -> &'a Value {
    doc["changes"]
        .as_array()
        .expect("changes")
        .iter()
        .find(|c| c["request_id"] == id)
        .unwrap_or_else(|| panic!("no change {id}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn fixture_chain_verifies_and_each_change_has_its_outcome() -> Result {
    let f = Fixture::build().await?;
    let mut verify = vec!["audit", "verify"];
    verify.extend(f.store_args());
    let out = ok(&verify);
    assert!(out.contains("story holds"), "{out}");

    let doc = changes_json(&f, &[])?;
    assert_eq!(doc["format"], "syndicate-changes/v1");
    assert_eq!(doc["integrity"]["verdict"], "intact");
    assert_eq!(doc["matched"], 9);
    let outcomes = [
        ("deployed", "succeeded"),
        ("rolled_back", "succeeded"),
        ("denied", "denied"),
        ("drifted", "refused"),
        ("pending", "pending"),
        ("failed", "failed"),
        ("approved", "approved"),
        ("policy_denied", "denied"),
        ("expired", "expired"),
    ];
    for (name, outcome) in outcomes {
        assert_eq!(
            change(&doc, f.id(name))["outcome"],
            outcome,
            "{name}: {:#}",
            change(&doc, f.id(name))
        );
    }
    // Times as people type them.
    assert_eq!(
        changes_json(&f, &["--since", "2000-01-01T00:00:00Z"])?["matched"],
        9
    );
    assert_eq!(
        changes_json(&f, &["--until", "2000-01-01T00:00:00.5Z"])?["matched"],
        0
    );
    assert_eq!(change(&doc, f.id("drifted"))["drift_attempts"], 1);
    assert_eq!(change(&doc, f.id("deployed"))["drift_attempts"], 0);

    // The JUnit report, imported through `syndicate annotate … test --junit`.
    let deployed = change(&doc, f.id("deployed"));
    let tests = deployed["tests"].as_array().expect("tests");
    assert_eq!(tests.len(), 1, "{deployed:#}");
    let run = &tests[0];
    assert_eq!(run["suite"], "payments-api");
    assert_eq!(
        (&run["passed"], &run["failed"], &run["skipped"]),
        (&Value::from(3), &Value::from(1), &Value::from(1))
    );
    assert_eq!(run["coverage_percent"], 81.5);
    assert_eq!(
        run["report_digest"],
        Digest::of_canonical(REPORT_TAG, JUNIT.as_bytes()).to_string()
    );
    assert_eq!(run["report"], "https://ci.example/runs/42/junit.xml");
    assert_eq!(run["author"], "ci@example.com");
    let review = &deployed["reviews"][0];
    assert_eq!(review["verdict"], "approved");
    assert_eq!(review["read_reasoning"], true);
    assert_eq!(review["note"], "looked at the diff");
    assert_eq!(
        deployed["deployments"][0]["commit"],
        fixture::COMMIT_DEPLOYED
    );
    // Annotations of a change point at its own events.
    let first = deployed["first_seq"].as_u64().expect("first");
    let last = deployed["last_seq"].as_u64().expect("last");
    for note in [run, review, &deployed["deployments"][0]] {
        let refers = note["refers_to_seq"].as_u64().expect("refers_to_seq");
        assert!((first..=last).contains(&refers), "{note:#}");
    }

    let rolled = change(&doc, f.id("rolled_back"));
    assert_eq!(rolled["rollbacks"][0]["reason"], "error rate up 4%");
    // A rollback refers to the deployment it undoes.
    assert_eq!(
        rolled["rollbacks"][0]["refers_to_seq"],
        rolled["deployments"][0]["seq"]
    );
    let correction = &rolled["corrections"][0];
    assert_eq!(correction["field"], "context.trigger");
    assert_eq!(correction["corrected"], "INC-8");
    // The original stays.
    assert_eq!(rolled["trigger"], "INC-7");
    assert_eq!(correction["refers_to_seq"], rolled["first_seq"]);
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn changes_match_the_golden_csv_json_and_markdown() -> Result {
    let f = Fixture::build().await?;
    for (format, file) in [
        ("csv", "changes.csv"),
        ("json", "changes.json"),
        ("md", "changes.md"),
        ("table", "changes.txt"),
    ] {
        let out = changes(&f, &["--format", format]);
        if format == "md" {
            // Stored text cannot become HTML or break the table.
            assert!(!out.contains("<img"), "{out}");
            assert!(
                out.contains("INC-51 &lt;img src=x onerror=alert(1)&gt; \\| ok"),
                "{out}"
            );
        }
        fixture::golden(file, &f.normalize(&out));
    }
    Ok(())
}

/// Reads CSV text with a real parser: the header and the records.
fn parse_csv(csv_text: &str) -> Result<(Vec<String>, Vec<Vec<String>>)> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .from_reader(csv_text.as_bytes());
    let header = reader.headers()?.iter().map(str::to_owned).collect();
    let mut rows = Vec::new();
    for record in reader.records() {
        rows.push(record?.iter().map(str::to_owned).collect());
    }
    Ok((header, rows))
}

/// What a spreadsheet cell shows for a JSON string: the value, with a
/// leading `'` when it would otherwise start a formula.
fn shown(value: &str) -> String {
    if value.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{value}")
    } else {
        value.to_owned()
    }
}

fn json_text(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn csv_read_back_by_a_csv_parser_equals_the_json_field_by_field() -> Result {
    let f = Fixture::build().await?;
    let csv_text = changes(&f, &["--format", "csv"]);
    assert!(csv_text.contains("\r\n"), "RFC 4180 lines end in CRLF");
    let (header, rows) = parse_csv(&csv_text)?;
    let doc = changes_json(&f, &[])?;
    let json_rows = doc["changes"].as_array().expect("changes");
    assert_eq!(rows.len(), json_rows.len());
    assert_eq!(rows.len(), 9);
    let col = |name: &str| {
        header
            .iter()
            .position(|h| h == name)
            .unwrap_or_else(|| panic!("no column {name} in {header:?}"))
    };
    for (row, c) in rows.iter().zip(json_rows) {
        assert_eq!(row.len(), header.len());
        let cell = |name: &str| row[col(name)].as_str();
        // One to one with JSON members.
        for (column, member) in [
            ("request_id", "request_id"),
            ("proposed_at", "proposed_at"),
            ("requester", "requester"),
            ("session", "session"),
            ("trigger", "trigger"),
            ("prompt", "prompt"),
            ("tool", "tool"),
            ("target", "target"),
            ("action_digest", "action_digest"),
            ("risk", "risk"),
            ("rule", "rule"),
            ("outcome", "outcome"),
            ("drift_attempts", "drift_attempts"),
            ("first_seq", "first_seq"),
            ("last_seq", "last_seq"),
        ] {
            assert_eq!(
                cell(column),
                shown(&json_text(&c[member])),
                "{column} of {}",
                c["request_id"]
            );
        }
        assert_eq!(cell("model"), json_text(&c["model"]["name"]));
        assert_eq!(cell("model_version"), json_text(&c["model"]["version"]));
        assert_eq!(cell("model_provider"), json_text(&c["model"]["provider"]));
        let controls: Vec<String> = c["controls"]
            .as_array()
            .expect("controls")
            .iter()
            .map(json_text)
            .collect();
        assert_eq!(cell("controls"), controls.join("; "));
        assert_eq!(
            cell("result_digest"),
            json_text(&c["completion"]["result_digest"])
        );
        // Lists: one entry per JSON element, naming it.
        let approvers: Vec<&str> = if cell("approvers").is_empty() {
            Vec::new()
        } else {
            cell("approvers").split("; ").collect()
        };
        let approvals = c["approvals"].as_array().expect("approvals");
        assert_eq!(approvers.len(), approvals.len(), "{}", cell("approvers"));
        for (text, a) in approvers.iter().zip(approvals) {
            assert!(
                text.starts_with(&format!(
                    "{} at {}",
                    json_text(&a["approver"]),
                    json_text(&a["at"])
                )),
                "{text} vs {a}"
            );
        }
        let tests = c["tests"].as_array().expect("tests");
        match tests.first() {
            None => assert_eq!(cell("tests"), ""),
            Some(t) => assert_eq!(
                cell("tests"),
                format!(
                    "{}: {} passed, {} failed, {} skipped",
                    json_text(&t["suite"]),
                    t["passed"],
                    t["failed"],
                    t["skipped"]
                )
            ),
        }
        let reviews = c["reviews"].as_array().expect("reviews");
        match reviews.first() {
            None => assert_eq!(cell("review"), ""),
            Some(r) => assert_eq!(
                cell("review"),
                format!(
                    "{} by {}",
                    json_text(&r["verdict"]),
                    json_text(&r["reviewer"])
                )
            ),
        }
        let deployments = c["deployments"].as_array().expect("deployments");
        assert_eq!(
            cell("deployment").is_empty(),
            deployments.is_empty(),
            "{}",
            cell("deployment")
        );
        for d in deployments {
            let commit = json_text(&d["commit"]);
            assert!(cell("deployment").contains(&commit[..11]), "{d}");
            assert!(
                cell("deployment").contains(&json_text(&d["environment"])),
                "{d}"
            );
        }
        let rollbacks: Vec<String> = c["rollbacks"]
            .as_array()
            .expect("rollbacks")
            .iter()
            .map(|r| json_text(&r["reason"]))
            .collect();
        assert_eq!(cell("rollback"), rollbacks.join("; "));
        assert_eq!(
            cell("corrections").is_empty(),
            c["corrections"].as_array().expect("corrections").is_empty()
        );
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn csv_cells_that_a_spreadsheet_would_run_are_neutralized() -> Result {
    let f = Fixture::build().await?;
    let (header, rows) = parse_csv(&changes(&f, &["--format", "csv"]))?;
    // No cell of any row starts a formula.
    for row in &rows {
        for (name, cell) in header.iter().zip(row) {
            assert!(
                !cell.starts_with(['=', '+', '-', '@', '\t', '\r']),
                "{name} = {cell:?} would run as a formula"
            );
        }
    }
    let pending = rows
        .iter()
        .find(|r| r[0] == f.id("pending"))
        .expect("pending row");
    let cell = |name: &str| &pending[header.iter().position(|h| h == name).expect(name)];
    assert_eq!(
        cell("requester"),
        "'=HYPERLINK(\"https://evil.example\",\"ok\")"
    );
    assert_eq!(cell("prompt"), "'=1+2 then scale, \"quoted\"\nsecond line");
    assert_eq!(cell("trigger"), "'@ops-page");
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn control_filter_returns_exactly_the_changes_in_its_scope() -> Result {
    let f = Fixture::build().await?;
    let set =
        |names: &[&str]| -> BTreeSet<String> { names.iter().map(|n| f.id(n).to_owned()).collect() };
    let pci = set(&["deployed", "rolled_back", "denied", "drifted"]);
    let selected = |control: &str| -> Result<BTreeSet<String>> {
        Ok(ids_of(&changes_json(&f, &["--control", control])?)
            .into_iter()
            .collect())
    };
    assert_eq!(selected("PCI-DSS-4.0:6.2.3")?, pci);
    // A requirement takes its sub-requirements.
    assert_eq!(selected("PCI-DSS-4.0:6.2")?, pci);
    assert_eq!(selected("PCI-DSS-4.0")?, pci);
    // A sibling or a longer number is not in scope.
    assert_eq!(selected("PCI-DSS-4.0:6.2.30")?, BTreeSet::new());
    assert_eq!(selected("PCI-DSS-4.0:6.2.")?, BTreeSet::new());
    assert_eq!(selected("SOC2:CC6.1")?, set(&["failed", "approved"]));
    let cc8 = set(&[
        "deployed",
        "rolled_back",
        "denied",
        "drifted",
        "pending",
        "expired",
    ]);
    assert_eq!(selected("SOC2:CC8.1")?, cc8);
    assert_eq!(selected("SOC2:CC8")?, cc8);
    // Not "SOC2:CC8.1" under "SOC2:CC" (CC8 is not a part of CC).
    assert_eq!(selected("SOC2:CC")?, BTreeSet::new());
    // Repeated: any.
    let both: BTreeSet<String> = ids_of(&changes_json(
        &f,
        &["--control", "SOC2:CC6.1", "--control", "PCI-DSS-4.0:6.2.3"],
    )?)
    .into_iter()
    .collect();
    assert_eq!(both, &pci | &set(&["failed", "approved"]));
    // Every change in scope carries a tag in it; every other carries none.
    let all = changes_json(&f, &[])?;
    for c in all["changes"].as_array().expect("changes") {
        let tags: Vec<&str> = c["controls"]
            .as_array()
            .expect("controls")
            .iter()
            .filter_map(Value::as_str)
            .collect();
        let id = c["request_id"].as_str().expect("id");
        assert_eq!(
            pci.contains(id),
            tags.contains(&"PCI-DSS-4.0:6.2.3"),
            "{id}: {tags:?}"
        );
    }
    // Filters combine: in scope and denied.
    let denied = changes_json(
        &f,
        &["--control", "PCI-DSS-4.0:6.2.3", "--outcome", "denied"],
    )?;
    assert_eq!(ids_of(&denied), vec![f.id("denied").to_owned()]);
    assert_eq!(denied["matched"], 1);
    Ok(())
}

/// The sampling rule of FORMAT.md, written again from its text: the `n`
/// changes whose `SHA-256("syndicate:sample:v1" || 0x00 || seed || 0x00 ||
/// request_id)` are smallest, in proposal order.
fn reference_sample(ids: &[String], n: usize, seed: &str) -> Vec<String> {
    use sha2::{Digest as _, Sha256};
    let mut keyed: Vec<(Vec<u8>, usize)> = ids
        .iter()
        .enumerate()
        .map(|(i, id)| {
            let mut h = Sha256::new();
            h.update(b"syndicate:sample:v1\0");
            h.update(seed.as_bytes());
            h.update([0]);
            h.update(id.as_bytes());
            (h.finalize().to_vec(), i)
        })
        .collect();
    keyed.sort();
    keyed.truncate(n);
    keyed.sort_by_key(|k| k.1);
    keyed.into_iter().map(|k| ids[k.1].clone()).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn sample_is_reproducible_by_seed_and_follows_the_documented_rule() -> Result {
    use std::sync::Arc;
    use syndicate_core::gate::{Gate, GateConfig, ProposalContext, RulePolicy};
    use syndicate_core::{Action, Actor};

    // Sixty changes: two seeds drawing the same 10 is a 1 in 7.5e10 event.
    let dir = tempfile::tempdir()?;
    let db = dir.path().join("big.db");
    let url = format!("sqlite://{}", db.display());
    let gate = Gate::open(
        fixture::store(&db).await?,
        Arc::new(RulePolicy::from_toml(&fixture::policy())?),
        GateConfig::default(),
    )
    .await?;
    for i in 0..60 {
        let action = Action::new("k8s.scale", serde_json::json!({"replicas": i}))?
            .with_target(format!("cluster:c{i}"))?;
        gate.propose(
            &format!("s{i}"),
            &Actor::agent("ci-bot@example.com"),
            &action,
            &ProposalContext::default(),
        )
        .await?;
    }
    drop(gate);
    let run = |extra: &[&str]| -> Result<Value> {
        let mut args = vec![
            "audit", "changes", "--store", &url, "--chain", "prod", "--format", "json",
        ];
        args.extend(extra);
        Ok(serde_json::from_str(&ok(&args))?)
    };
    let all = ids_of(&run(&[])?);
    assert_eq!(all.len(), 60);

    let a = run(&["--sample", "10", "--seed", "audit-2026-q1"])?;
    let again = run(&["--sample", "10", "--seed", "audit-2026-q1"])?;
    let other = run(&["--sample", "10", "--seed", "audit-2026-q2"])?;
    assert_eq!(ids_of(&a).len(), 10);
    assert_eq!(ids_of(&a), ids_of(&again), "same seed, same rows");
    assert_ne!(ids_of(&a), ids_of(&other), "another seed, other rows");
    assert_eq!(a["matched"], 60);
    assert_eq!(a["sample"]["n"], 10);
    assert_eq!(a["sample"]["seed"], "audit-2026-q1");
    assert_eq!(ids_of(&a), reference_sample(&all, 10, "audit-2026-q1"));
    assert_eq!(ids_of(&other), reference_sample(&all, 10, "audit-2026-q2"));
    // Rows stay in proposal order.
    let positions: Vec<usize> = ids_of(&a)
        .iter()
        .map(|id| all.iter().position(|x| x == id).expect("in all"))
        .collect();
    assert!(positions.windows(2).all(|w| w[0] < w[1]), "{positions:?}");
    // The sample is drawn after filtering, from the changes matched.
    let filtered = run(&[
        "--target",
        "cluster:c1*",
        "--sample",
        "3",
        "--seed",
        "audit-2026-q1",
    ])?;
    let in_scope: Vec<String> = all
        .iter()
        .enumerate()
        .filter(|(i, _)| format!("c{i}").starts_with("c1"))
        .map(|(_, id)| id.clone())
        .collect();
    assert_eq!(filtered["matched"], in_scope.len());
    assert_eq!(
        ids_of(&filtered),
        reference_sample(&in_scope, 3, "audit-2026-q1")
    );
    // Asking for more than there are returns them all.
    assert_eq!(
        ids_of(&run(&["--sample", "100", "--seed", "x"])?),
        all,
        "a sample larger than the population is the population"
    );
    // --sample without --seed is refused: a sample must be drawable again.
    let out = syndicate(&[
        "audit", "changes", "--store", &url, "--chain", "prod", "--sample", "3",
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    Ok(())
}

/// A git repository in `dir`, isolated from the machine's git
/// configuration; returns a function running git in it.
fn git_repo(dir: &std::path::Path) -> impl Fn(&[&str]) -> String + '_ {
    let empty = dir.join("gitconfig");
    std::fs::write(&empty, "").expect("gitconfig");
    let repo = dir.join("repo");
    std::fs::create_dir(&repo).expect("repo dir");
    let git = move |args: &[&str]| -> String {
        let out = std::process::Command::new("git")
            .arg("-C")
            .arg(&repo)
            .args(["-c", "user.name=Dev", "-c", "user.email=dev@example.com"])
            .args(["-c", "commit.gpgsign=false"])
            .args(args)
            .env("GIT_CONFIG_GLOBAL", &empty)
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_AUTHOR_DATE", "2026-03-02T10:00:00Z")
            .env("GIT_COMMITTER_DATE", "2026-03-02T10:00:00Z")
            .output()
            .expect("run git");
        assert!(
            out.status.success(),
            "git {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    };
    git(&["init", "-q", "-b", "main"]);
    git
}

fn commit(git: &impl Fn(&[&str]) -> String, message: &str) -> String {
    git(&["commit", "-q", "--allow-empty", "-m", message]);
    git(&["rev-parse", "HEAD"])
}

#[tokio::test(flavor = "multi_thread")]
async fn commits_lists_requests_per_commit_and_fails_on_commits_without_a_trail() -> Result {
    let f = Fixture::build().await?;
    let git = git_repo(f.dir.path());
    let repo = f.dir.path().join("repo").display().to_string();
    let base = commit(&git, "initial");
    let fix = commit(
        &git,
        &format!(
            "Fix rounding\n\nRound half to even.\n\nSyndicate-Request: {}",
            f.id("deployed")
        ),
    );
    let hotfix = commit(&git, "Hotfix without a trail");
    let checkout = commit(
        &git,
        &format!(
            "Checkout page\n\nSyndicate-Request: {}\nSyndicate-Request: {}\nSigned-off-by: Dev <dev@example.com>",
            f.id("rolled_back"),
            f.id("drifted")
        ),
    );
    // Named in the body, not in the trailer block: not a trail.
    let body_only = commit(
        &git,
        &format!(
            "Mention only\n\nSyndicate-Request: {} was related.\n\nThis paragraph ends the message.",
            f.id("denied")
        ),
    );
    let unknown = commit(
        &git,
        "Unknown request\n\nSyndicate-Request: req-00000000000000000000000000000000",
    );
    // Linked the other way: a deployment annotation naming the commit
    // (abbreviated, as people paste them).
    let deployed_by_note = commit(&git, "Config flag");
    f.annotate_cli(
        "failed",
        "deployer@example.com",
        &["deploy", "--commit", &deployed_by_note[..12]],
    );

    let range = format!("{base}..HEAD");
    let commits = |range: &str, format: &str| {
        let mut args = vec![
            "audit", "commits", "--repo", &repo, "--range", range, "--format", format,
        ];
        args.extend(f.store_args());
        syndicate(&args)
    };
    let out = commits(&range, "json");
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let doc: Value = serde_json::from_slice(&out.stdout)?;
    assert_eq!(doc["format"], "syndicate-commits/v1");
    let rows = doc["commits"].as_array().expect("commits");
    let got: Vec<(String, Vec<String>)> = rows
        .iter()
        .map(|r| {
            (
                json_text(&r["commit"]),
                r["requests"]
                    .as_array()
                    .expect("requests")
                    .iter()
                    .map(json_text)
                    .collect(),
            )
        })
        .collect();
    let mut both = vec![f.id("rolled_back").to_owned(), f.id("drifted").to_owned()];
    both.sort();
    assert_eq!(
        got,
        vec![
            (fix.clone(), vec![f.id("deployed").to_owned()]),
            (hotfix.clone(), vec![]),
            (checkout.clone(), both),
            (body_only.clone(), vec![]),
            (unknown.clone(), vec![]),
            (deployed_by_note.clone(), vec![f.id("failed").to_owned()]),
        ],
        "oldest first, each with its requests"
    );
    assert_eq!(
        doc["without_trail"],
        serde_json::json!([hotfix, body_only, unknown])
    );
    assert_eq!(
        rows[4]["unknown_trailers"],
        serde_json::json!(["req-00000000000000000000000000000000"])
    );

    let out = commits(&range, "text");
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let shown = String::from_utf8_lossy(&out.stdout);
    assert!(shown.contains("commits without a trail: 3"), "{shown}");
    // The table lines up: every row's requests start under REQUESTS.
    let header = shown.lines().nth(1).expect("header");
    let at = header.find("REQUESTS").expect("REQUESTS column");
    for line in shown.lines().skip(2).take(6) {
        let cell = line.get(at..).unwrap_or_default();
        assert!(
            cell.starts_with("req-") || cell.starts_with("NO TRAIL"),
            "{line:?} in:\n{shown}"
        );
    }
    for c in [&hotfix, &body_only, &unknown] {
        assert!(shown.contains(&format!("  {c}  ")), "{c} listed: {shown}");
    }
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("3 of 6 commits have no trail"),
        "{}",
        text(&out)
    );

    // Every commit has a trail: exit 0.
    let out = commits(&format!("{base}..{fix}"), "text");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let out = commits(&format!("{hotfix}..{checkout}"), "json");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let doc: Value = serde_json::from_slice(&out.stdout)?;
    assert_eq!(doc["without_trail"], serde_json::json!([]));

    // `git link` records the trailers as commit annotations, once.
    let link = |extra: &[&str]| {
        let mut args = vec!["git", "link", "--repo", &repo, "--range", &range];
        args.extend(f.store_args());
        args.extend(extra);
        syndicate(&args)
    };
    let out = link(&[]);
    // The unknown request's trailer is named, with exit 1.
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("3 links recorded, 0 already recorded"),
        "{}",
        text(&out)
    );
    assert!(
        text(&out).contains("req-00000000000000000000000000000000"),
        "{}",
        text(&out)
    );
    let out = link(&[]);
    assert!(
        text(&out).contains("0 links recorded, 3 already recorded"),
        "{}",
        text(&out)
    );
    let doc = changes_json(&f, &[])?;
    let linked = |name: &str| -> Vec<String> {
        change(&doc, f.id(name))["commits"]
            .as_array()
            .expect("commits")
            .iter()
            .map(|n| json_text(&n["commit"]))
            .collect()
    };
    assert_eq!(linked("deployed"), vec![fix.clone()]);
    assert_eq!(linked("rolled_back"), vec![checkout.clone()]);
    assert_eq!(linked("drifted"), vec![checkout.clone()]);
    assert_eq!(linked("denied"), Vec::<String>::new());
    let subject = &change(&doc, f.id("deployed"))["commits"][0]["subject"];
    assert_eq!(subject, "Fix rounding");
    // The links keep the story whole.
    let mut verify = vec!["audit", "verify"];
    verify.extend(f.store_args());
    ok(&verify);
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn replay_tells_the_story_with_every_event_seq_and_hash() -> Result {
    use syndicate_core::{EventStore, Query};
    let f = Fixture::build().await?;
    let replay = |name: &str, format: &str| {
        let mut args = vec!["audit", "replay", f.id(name), "--format", format];
        args.extend(f.store_args());
        ok(&args)
    };
    // The events of the request, read from the store by this test.
    let store = fixture::store(&f.db).await?;
    for name in ["deployed", "rolled_back", "drifted", "expired", "denied"] {
        let events = store.query(&Query::request(f.id(name))).await?;
        assert!(events.len() >= 2, "{name}");
        let story = replay(name, "text");
        let mut from = 0;
        for e in &events {
            // In order, each with its seq and its hash.
            let seq_line = format!("seq {:>6}  {}", e.seq, e.columns.at);
            let at = story[from..]
                .find(&seq_line)
                .unwrap_or_else(|| panic!("{name}: no {seq_line:?} after byte {from}:\n{story}"));
            // Its lines run to the next event's.
            let start = from + at;
            let end = story[start + 1..]
                .find("\nseq ")
                .map_or(story.len(), |n| start + 1 + n);
            let hash_line = format!("\n            hash {}\n", e.hash);
            assert!(
                story[start..(end + 1).min(story.len())].contains(&hash_line),
                "{name}: seq {} shows its hash:\n{story}",
                e.seq
            );
            from = end;
        }
        let doc: Value = serde_json::from_str(&replay(name, "json"))?;
        let listed: Vec<(u64, String)> = doc["events"]
            .as_array()
            .expect("events")
            .iter()
            .map(|s| (s["seq"].as_u64().expect("seq"), json_text(&s["hash"])))
            .collect();
        let stored: Vec<(u64, String)> =
            events.iter().map(|e| (e.seq, e.hash.to_string())).collect();
        assert_eq!(listed, stored, "{name}");
    }
    let story = replay("drifted", "text");
    assert!(story.contains("DRIFT: tried to run digest"), "{story}");
    let story = replay("deployed", "text");
    for expected in [
        "Trigger: INC-42",
        "Reasoning: the fix is merged and the canary is green",
        "Considered instead: wait for the weekly release train",
        "bob@example.com approved digest",
        "completed: succeeded (exit 0",
        "suite payments-api: 3 passed, 1 failed, 1 skipped, coverage 81.5%, report digest ",
        "(https://ci.example/runs/42/junit.xml)",
        "note: \"looked at the diff\"",
        "from branch main, deployed at 2026-03-02T10:05:00.000000Z",
        "approved by dana@example.com (read the reasoning)",
        fixture::COMMIT_DEPLOYED,
    ] {
        assert!(story.contains(expected), "{expected:?} in:\n{story}");
    }
    fixture::golden(
        "replay-rolled-back.txt",
        &f.normalize(&replay("rolled_back", "text")),
    );
    // Stored text reaches the terminal escaped.
    let story = replay("pending", "text");
    assert!(
        story.contains("Prompt: =1+2 then scale, \"quoted\"\\u{000a}second line"),
        "{story}"
    );

    let mut args = vec!["audit", "replay", "req-nope"];
    args.extend(f.store_args());
    assert_eq!(syndicate(&args).status.code(), Some(2));
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn annotation_naming_an_event_by_the_wrong_hash_breaks_the_story() -> Result {
    use syndicate_core::annotation::{Annotation, EventRef, Review, Verdict};
    use syndicate_core::{Actor, EventStore, Query};
    let f = Fixture::build().await?;
    let mut verify = vec!["audit", "verify"];
    verify.extend(f.store_args());
    ok(&verify);

    let store = fixture::store(&f.db).await?;
    let proposed = store
        .query(&Query::request(f.id("pending")))
        .await?
        .remove(0);
    let wrong = EventRef {
        seq: proposed.seq,
        hash: Digest::of_canonical("not", b"the proposal"),
    };
    let review = Review {
        reviewer: "mallory@example.com".into(),
        verdict: Verdict::Approved,
        comments: None,
        read_reasoning: false,
    };
    let written = store
        .append(&[Annotation::review(f.id("pending"), wrong, review)
            .draft("s-pending", Actor::human("mallory@example.com"))])
        .await?;
    let bad_seq = written[0].seq;
    drop(store);

    let out = syndicate(&verify);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let shown = String::from_utf8_lossy(&out.stdout);
    assert!(
        shown.starts_with("intact:"),
        "integrity still holds: {shown}"
    );
    assert!(
        shown.contains(&format!(
            "STORY VIOLATION at seq {bad_seq}: annotation_reference"
        )),
        "{shown}"
    );
    assert!(shown.contains("but that event's hash is"), "{shown}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains(&format!("first at seq {bad_seq}")),
        "{}",
        text(&out)
    );
    // The report does not count it as a review of the change.
    let doc = changes_json(&f, &[])?;
    assert_eq!(
        change(&doc, f.id("pending"))["reviews"],
        serde_json::json!([]),
        "an annotation whose reference does not hold is not evidence"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn checks_name_changes_that_ran_without_the_evidence_their_rule_requires() -> Result {
    let f = Fixture::build().await?;
    let mut args = vec!["audit", "checks", "--format", "json"];
    args.extend(f.store_args());
    let out = syndicate(&args);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let doc: Value = serde_json::from_slice(&out.stdout)?;
    let findings: Vec<(String, String, String)> = doc["findings"]
        .as_array()
        .unwrap_or_else(|| panic!("findings in {doc:#}"))
        .iter()
        .map(|x| {
            (
                json_text(&x["check"]),
                json_text(&x["request_id"]),
                json_text(&x["detail"]),
            )
        })
        .collect();
    // `deploys` requires a test and a review: the deployed change's test
    // run failed a case; the rolled-back one has neither. Changes that did
    // not run need nothing, and nothing else is found.
    let missing = |name: &str| -> Vec<&str> {
        findings
            .iter()
            .filter(|(check, id, _)| check == "missing-required-evidence" && id == f.id(name))
            .map(|(_, _, detail)| detail.as_str())
            .collect()
    };
    assert_eq!(missing("deployed").len(), 1, "{findings:#?}");
    assert!(
        missing("deployed")[0].contains("requires a test"),
        "{findings:#?}"
    );
    assert_eq!(missing("rolled_back").len(), 2, "{findings:#?}");
    assert_eq!(findings.len(), 3, "{findings:#?}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn approvals_show_whether_signed_by_which_key_and_whether_it_verifies() -> Result {
    use syndicate_core::decision::Decision;
    use syndicate_core::keys::SigningKey;
    use syndicate_core::{Actor, EventDraft, EventKind, EventStoreExt};
    let f = Fixture::build().await?;
    let bob = fixture::bob_key();
    let carol = fixture::carol_key();
    let doc = changes_json(&f, &[])?;
    assert_eq!(doc["signatures_judged_by"], "policy");
    let approval = |doc: &Value, name: &str| change(doc, f.id(name))["approvals"][0].clone();
    // Signed by a key the policy in force declares for the approver.
    let a = approval(&doc, "deployed");
    assert_eq!(a["signature"], "verified", "{a:#}");
    assert_eq!(a["key_id"], bob.key_id().to_string());
    assert_eq!(a["signature_detail"], Value::Null);
    assert_eq!(
        approval(&doc, "rolled_back")["key_id"],
        carol.key_id().to_string()
    );
    // A rule's approval carries no signature.
    let a = approval(&doc, "failed");
    assert_eq!(
        (&a["signature"], &a["key_id"]),
        (&Value::from("unsigned"), &Value::Null)
    );
    let csv_text = changes(&f, &["--format", "csv"]);
    assert!(
        csv_text.contains(&format!("[signed {}, verified]", bob.key_id())),
        "{csv_text}"
    );

    // Judged by an auditor who trusts only carol's key: bob's signatures
    // are no longer good, carol's still are.
    let carol_pub = carol.verifier().to_string();
    let doc = changes_json(&f, &["--trusted-keys", &carol_pub])?;
    assert_eq!(doc["signatures_judged_by"], "trusted_keys");
    let a = approval(&doc, "deployed");
    assert_eq!(a["signature"], "invalid", "{a:#}");
    assert_eq!(a["key_id"], bob.key_id().to_string());
    assert!(
        json_text(&a["signature_detail"]).contains("bob@example.com"),
        "{a:#}"
    );
    assert_eq!(approval(&doc, "rolled_back")["signature"], "verified");
    let table = changes(&f, &["--trusted-keys", &carol_pub]);
    assert!(
        table.contains(&format!("bob@example.com (INVALID {})", bob.key_id())),
        "{table}"
    );

    // An approval written straight into the store, signed by another key
    // that calls itself bob: not a key the policy declares.
    let mallory = SigningKey::from_seed("bob@example.com", &[9; 32])?;
    let pending = f.id("pending").to_owned();
    let digest = change(&changes_json(&f, &[])?, &pending)["action_digest"]
        .as_str()
        .expect("digest")
        .parse::<Digest>()?;
    let forged = fixture::decide(&mallory, &pending, digest, Decision::Approve);
    let store = fixture::store(&f.db).await?;
    store
        .append_one(
            EventDraft::new(
                "s-pending",
                EventKind::ActionApproved,
                Actor::human("bob@example.com"),
                serde_json::json!({
                    "request_id": pending, "action_digest": digest,
                    "approver": "bob@example.com", "method": "human", "signed": forged
                }),
            )
            .with_once(format!("approval:{pending}:bob@example.com")),
        )
        .await?;
    drop(store);
    let doc = changes_json(&f, &[])?;
    let a = approval(&doc, "pending");
    assert_eq!(a["signature"], "invalid", "{a:#}");
    assert_eq!(a["key_id"], mallory.key_id().to_string());
    assert!(
        json_text(&a["signature_detail"]).contains("no trusted key"),
        "{a:#}"
    );
    // It does not count: the change is still pending.
    assert_eq!(change(&doc, &pending)["outcome"], "pending");

    // Under a policy activated later that declares no approvers, a signed
    // approval has no keys to be checked with: unchecked, not verified.
    use syndicate_core::gate::{Policy, RulePolicy};
    let lax = RulePolicy::from_toml(fixture::POLICY_RULES)?;
    let staged = f.id("approved").to_owned();
    let digest = digest_of(&f, "approved")?;
    let signed = fixture::decide(&carol, &staged, digest, Decision::Approve);
    let store = fixture::store(&f.db).await?;
    store
        .append_one(EventDraft::new(
            "gate",
            EventKind::PolicyActivated,
            Actor::system("gate"),
            serde_json::json!({"policy": lax.reference(), "document": lax.document()}),
        ))
        .await?;
    store
        .append_one(
            EventDraft::new(
                "s-approved",
                EventKind::ActionApproved,
                Actor::human("carol@example.com"),
                serde_json::json!({
                    "request_id": staged, "action_digest": digest,
                    "approver": "carol@example.com", "method": "human", "signed": signed
                }),
            )
            .with_once(format!("approval:{staged}:carol@example.com")),
        )
        .await?;
    drop(store);
    let doc = changes_json(&f, &[])?;
    let a = change(&doc, &staged)["approvals"][1].clone();
    assert_eq!(a["signature"], "unchecked", "{a:#}");
    assert_eq!(a["key_id"], carol.key_id().to_string());
    assert!(
        json_text(&a["signature_detail"]).contains("declares none"),
        "{a:#}"
    );
    // The auditor's own keys judge it: carol's key verifies it.
    let doc = changes_json(&f, &["--trusted-keys", &carol_pub])?;
    assert_eq!(
        change(&doc, &staged)["approvals"][1]["signature"],
        "verified"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn table_columns_line_up() -> Result {
    let f = Fixture::build().await?;
    let table = changes(&f, &[]);
    let lines: Vec<Vec<char>> = table.lines().map(|l| l.chars().collect()).collect();
    let header: String = lines[0].iter().collect();
    let starts: Vec<usize> = [
        "PROPOSED",
        "REQUESTER",
        "TOOL",
        "APPROVERS",
        "OUTCOME",
        "SEQ",
    ]
    .iter()
    .map(|name| {
        header
            .find(&format!("  {name}"))
            .map(|i| header[..i + 2].chars().count())
            .unwrap_or_else(|| panic!("{name} in {header}"))
    })
    .collect();
    assert_eq!(lines.len(), 10, "{table}");
    for line in &lines[1..] {
        for &start in &starts {
            let text: String = line.iter().collect();
            assert!(
                line.len() > start && line[start - 2..start] == [' ', ' '] && line[start] != ' '
                    || line.get(start).is_none_or(|c| *c == ' '),
                "column at {start} out of line in:\n{text}\n{table}"
            );
        }
    }
    Ok(())
}

/// A Python with `cryptography` for the independent verifier: from
/// `SYNDICATE_TEST_PYTHON` (set by `scripts/test.sh`); without it the
/// check is skipped saying so, and under `CI=true` it fails.
fn python() -> Option<std::path::PathBuf> {
    match std::env::var_os("SYNDICATE_TEST_PYTHON") {
        Some(path) => Some(path.into()),
        None => {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "SYNDICATE_TEST_PYTHON (a python with `cryptography`) is required under CI=true"
            );
            println!("skipping the Python check: SYNDICATE_TEST_PYTHON not set");
            None
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn signed_reports_verify_and_a_changed_byte_or_another_key_is_refused() -> Result {
    let f = Fixture::build().await?;
    let dir = f.dir.path();
    let key = dir.join("log.key");
    let key_path = key.to_str().expect("path");
    let log_pub = ok(&[
        "key",
        "new",
        "--id",
        "audit.example.com/prod",
        "--out",
        key_path,
    ])
    .trim()
    .to_owned();
    let other_pub = ok(&[
        "key",
        "new",
        "--id",
        "audit.example.com/prod",
        "--out",
        dir.join("other.key").to_str().expect("path"),
    ])
    .trim()
    .to_owned();
    let report = dir.join("changes.md");
    let report_path = report.to_str().expect("path");
    let out = changes(
        &f,
        &[
            "--format",
            "md",
            "--out",
            report_path,
            "--sign-key",
            key_path,
        ],
    );
    assert_eq!(out, "", "the report went to the file");
    let md = std::fs::read_to_string(&report)?;
    // The integrity verdict and the head hash stay at the top.
    assert!(
        md.starts_with("# Changes on chain `prod`\n\n**Integrity: INTACT**"),
        "{md}"
    );
    assert!(
        md.lines().nth(2).expect("line 3").contains("head hash `"),
        "{md}"
    );
    let sig = std::fs::read_to_string(dir.join("changes.md.sig"))?;
    assert!(
        sig.starts_with("syndicate-report-signature/v1\nsha256 "),
        "{sig}"
    );
    // The same bytes as printing it.
    assert_eq!(md, changes(&f, &["--format", "md"]));

    let verify = |report: &str, key: &str| {
        syndicate(&[
            "audit",
            "verify-report",
            report,
            "--signature",
            dir.join("changes.md.sig").to_str().expect("path"),
            "--key",
            key,
        ])
    };
    let out = verify(report_path, &log_pub);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).starts_with("verified: "), "{}", text(&out));

    // One byte changed.
    let mut bytes = md.clone().into_bytes();
    let at = md.find("succeeded").expect("an outcome");
    bytes[at] = b'S';
    let changed = dir.join("changed.md");
    std::fs::write(&changed, &bytes)?;
    let out = verify(changed.to_str().expect("path"), &log_pub);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("the report was changed"),
        "{}",
        text(&out)
    );
    // Another key of the same name.
    let out = verify(report_path, &other_pub);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("does not verify"), "{}", text(&out));
    // A signature altered.
    let forged = dir.join("forged.sig");
    std::fs::write(&forged, sig.replace("size ", "size 1"))?;
    let out = syndicate(&[
        "audit",
        "verify-report",
        report_path,
        "--signature",
        forged.to_str().expect("path"),
        "--key",
        &log_pub,
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));

    // The independent Python verifier, written from FORMAT.md, agrees.
    if let Some(python) = python() {
        let keys = dir.join("keys.txt");
        let script =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/verify_jsonl.py");
        let check = |report: &str, key: &str| -> Result<std::process::Output> {
            std::fs::write(&keys, format!("{key}\n"))?;
            Ok(std::process::Command::new(&python)
                .arg(&script)
                .args(["--report", report, "--signature"])
                .arg(dir.join("changes.md.sig"))
                .arg("--trusted-keys")
                .arg(&keys)
                .output()?)
        };
        let out = check(report_path, &log_pub)?;
        assert_eq!(out.status.code(), Some(0), "{}", text(&out));
        let out = check(changed.to_str().expect("path"), &log_pub)?;
        assert_eq!(out.status.code(), Some(1), "{}", text(&out));
        assert!(
            text(&out).contains("is not the one signed"),
            "{}",
            text(&out)
        );
        let out = check(report_path, &other_pub)?;
        assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    }

    // `audit report` signs the same way; the default signature is `<out>.sig`.
    let summary = dir.join("report.json");
    let mut args = vec!["audit", "report", "--format", "json"];
    args.extend(f.store_args());
    args.extend([
        "--out",
        summary.to_str().expect("path"),
        "--sign-key",
        key_path,
    ]);
    ok(&args);
    let out = syndicate(&[
        "audit",
        "verify-report",
        summary.to_str().expect("path"),
        "--key",
        &log_pub,
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    // Signing with no place for the signature is refused before any work.
    let out = syndicate(&[
        "audit",
        "changes",
        "--store",
        &f.url,
        "--sign-key",
        key_path,
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    Ok(())
}

/// `audit checks --check NAME --format json`: exit code and findings as
/// (request id, seq, detail).
type Found = Vec<(String, u64, String)>;

fn check(f: &Fixture, name: &str) -> Result<(i32, Found)> {
    let mut args = vec!["audit", "checks", "--check", name, "--format", "json"];
    args.extend(f.store_args());
    let out = syndicate(&args);
    let doc: Value =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&out)));
    let findings = doc["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .map(|x| {
            assert_eq!(x["check"], name, "{x}");
            (
                json_text(&x["request_id"]),
                x["seq"].as_u64().expect("seq"),
                json_text(&x["detail"]),
            )
        })
        .collect();
    Ok((out.status.code().expect("exit code"), findings))
}

/// The proposed digest of a fixture change.
fn digest_of(f: &Fixture, name: &str) -> Result<Digest> {
    Ok(change(&changes_json(f, &[])?, f.id(name))["action_digest"]
        .as_str()
        .expect("digest")
        .parse()?)
}

/// Appends a start of `request` straight into the store, as a gate that
/// skipped its checks (or a writer with store access) would.
async fn forge_start(f: &Fixture, name: &str, session: &str) -> Result<u64> {
    use syndicate_core::{Actor, EventDraft, EventKind, EventStoreExt};
    let digest = digest_of(f, name)?;
    let id = f.id(name);
    let store = fixture::store(&f.db).await?;
    let event = store
        .append_one(
            EventDraft::new(
                session,
                EventKind::ExecutionStarted,
                Actor::system("gate"),
                serde_json::json!({
                    "request_id": id, "approved_digest": digest, "executed_digest": digest
                }),
            )
            .with_once(format!("decision:{id}")),
        )
        .await?;
    Ok(event.seq)
}

#[tokio::test(flavor = "multi_thread")]
async fn check_execution_without_approval_finds_a_start_nobody_approved() -> Result {
    let f = Fixture::build().await?;
    // Negative: every change of the fixture that ran was approved.
    assert_eq!(check(&f, "execution-without-approval")?, (0, vec![]));
    // Positive: the pending change starts with no approval.
    let seq = forge_start(&f, "pending", "s-pending").await?;
    let (code, found) = check(&f, "execution-without-approval")?;
    assert_eq!(code, 1);
    assert_eq!(found.len(), 1, "{found:#?}");
    assert_eq!((found[0].0.as_str(), found[0].1), (f.id("pending"), seq));
    assert!(
        found[0].2.contains("0 of 1 required approvals"),
        "{found:#?}"
    );

    // `audit query --check` selects the events of the changes it finds.
    let mut args = vec![
        "audit",
        "query",
        "--check",
        "execution-without-approval",
        "--format",
        "json",
    ];
    args.extend(f.store_args());
    let doc: Value = serde_json::from_str(&ok(&args))?;
    assert_eq!(doc["format"], "syndicate-query/v1");
    assert_eq!(doc["verified"], true);
    let events = doc["events"].as_array().expect("events");
    let seqs: Vec<u64> = events
        .iter()
        .map(|e| e["seq"].as_u64().expect("seq"))
        .collect();
    assert!(seqs.contains(&seq), "{seqs:?}");
    assert!(
        events.iter().all(|e| e["request_id"] == f.id("pending")),
        "{doc:#}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn check_self_approval_finds_a_requester_approving_their_own_change() -> Result {
    use std::sync::Arc;
    use syndicate_core::decision::Decision;
    use syndicate_core::gate::{Gate, GateConfig, ProposalContext, RulePolicy};
    use syndicate_core::{Action, Actor};
    let f = Fixture::build().await?;
    // Negative: bob and carol approved changes an agent asked for.
    assert_eq!(check(&f, "self-approval")?, (0, vec![]));
    // Positive: a gate configured to allow it records bob approving his own.
    let gate = Gate::open(
        fixture::store(&f.db).await?,
        Arc::new(RulePolicy::from_toml(&fixture::policy())?),
        GateConfig {
            allow_self_approval: true,
            ..GateConfig::default()
        },
    )
    .await?;
    let action =
        Action::new("k8s.scale", serde_json::json!({"replicas": 2}))?.with_target("cluster:dev")?;
    let p = gate
        .propose(
            "s-self",
            &Actor::human("bob@example.com"),
            &action,
            &ProposalContext::default(),
        )
        .await?;
    let approval = gate
        .submit(fixture::decide(
            &fixture::bob_key(),
            &p.request_id,
            action.digest(),
            Decision::Approve,
        ))
        .await?;
    drop(gate);
    let (code, found) = check(&f, "self-approval")?;
    assert_eq!(code, 1);
    assert_eq!(found.len(), 1, "{found:#?}");
    assert_eq!(found[0].0, p.request_id);
    assert_eq!(found[0].1, approval.seq);
    assert!(
        found[0].2.contains("approved their own request"),
        "{found:#?}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn check_approval_after_expiry_finds_a_start_after_the_approval_expired() -> Result {
    use syndicate_core::decision::Decision;
    use syndicate_core::{Actor, EventDraft, EventKind, EventStoreExt};
    let f = Fixture::build().await?;
    // Negative: the expired change was refused, the others ran in time.
    assert_eq!(check(&f, "approval-after-expiry")?, (0, vec![]));
    // Positive: a signed approval that expired long ago, then a start.
    let digest = digest_of(&f, "pending")?;
    let id = f.id("pending").to_owned();
    let signed = fixture::decide(&fixture::bob_key(), &id, digest, Decision::Approve);
    let store = fixture::store(&f.db).await?;
    store
        .append_one(
            EventDraft::new(
                "s-pending",
                EventKind::ActionApproved,
                Actor::human("bob@example.com"),
                serde_json::json!({
                    "request_id": id, "action_digest": digest, "approver": "bob@example.com",
                    "method": "human", "expires_at": "2000-01-01T00:00:00.000000Z",
                    "signed": signed
                }),
            )
            .with_once(format!("approval:{id}:bob@example.com")),
        )
        .await?;
    drop(store);
    // The approval itself is sound: no execution without approval.
    let seq = forge_start(&f, "pending", "s-pending").await?;
    assert_eq!(check(&f, "execution-without-approval")?, (0, vec![]));
    let (code, found) = check(&f, "approval-after-expiry")?;
    assert_eq!(code, 1);
    assert_eq!(found, vec![(id, seq, found[0].2.clone())]);
    assert!(
        found[0]
            .2
            .contains("usable until 2000-01-01T00:00:00.000000Z"),
        "{found:#?}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn check_superseded_policy_finds_a_change_proposed_under_an_old_policy() -> Result {
    use std::sync::Arc;
    use syndicate_core::gate::{Gate, GateConfig, ProposalContext, RulePolicy};
    use syndicate_core::{Action, Actor};
    let f = Fixture::build().await?;
    assert_eq!(check(&f, "superseded-policy")?, (0, vec![]));
    // A gate still running policy version 1 after another activated 2.
    let old = Gate::open(
        fixture::store(&f.db).await?,
        Arc::new(RulePolicy::from_toml(&fixture::policy())?),
        GateConfig::default(),
    )
    .await?;
    let v2 = fixture::policy().replacen("version = \"1\"", "version = \"2\"", 1);
    let new = Gate::open(
        fixture::store(&f.db).await?,
        Arc::new(RulePolicy::from_toml(&v2)?),
        GateConfig::default(),
    )
    .await?;
    let agent = Actor::agent("ci-bot@example.com");
    let ctx = ProposalContext::default();
    let scale = |n: u32| {
        Action::new("k8s.scale", serde_json::json!({"replicas": n}))
            .and_then(|a| a.with_target("cluster:dev"))
    };
    // Negative: proposed under the policy in force.
    let current = new.propose("s-new", &agent, &scale(3)?, &ctx).await?;
    // Positive: proposed under the superseded one.
    let stale = old.propose("s-old", &agent, &scale(4)?, &ctx).await?;
    drop((old, new));
    let (code, found) = check(&f, "superseded-policy")?;
    assert_eq!(code, 1);
    let ids: Vec<&str> = found.iter().map(|x| x.0.as_str()).collect();
    assert_eq!(ids, vec![stale.request_id.as_str()], "{found:#?}");
    assert!(!ids.contains(&current.request_id.as_str()));
    assert!(
        found[0]
            .2
            .contains("proposed under evidence v1 while evidence v2"),
        "{found:#?}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn check_missing_required_evidence_clears_once_a_passing_test_is_recorded() -> Result {
    let f = Fixture::build().await?;
    let (code, found) = check(&f, "missing-required-evidence")?;
    assert_eq!(code, 1);
    let of = |found: &[(String, u64, String)], name: &str| {
        found.iter().filter(|x| x.0 == f.id(name)).count()
    };
    assert_eq!(of(&found, "deployed"), 1, "{found:#?}");
    assert_eq!(of(&found, "rolled_back"), 2, "{found:#?}");
    // Negative: with a passing run beside the failed one, the deployed
    // change (already reviewed) has all its rule requires.
    f.annotate_cli(
        "deployed",
        "ci@example.com",
        &["test", "--suite", "payments-api", "--passed", "5"],
    );
    let (code, found) = check(&f, "missing-required-evidence")?;
    assert_eq!(code, 1);
    assert_eq!(of(&found, "deployed"), 0, "{found:#?}");
    assert_eq!(of(&found, "rolled_back"), 2, "{found:#?}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn query_selects_events_by_the_changes_filters() -> Result {
    let f = Fixture::build().await?;
    let query = |extra: &[&str]| -> Result<Value> {
        let mut args = vec!["audit", "query", "--format", "json"];
        args.extend(f.store_args());
        args.extend(extra);
        Ok(serde_json::from_str(&ok(&args))?)
    };
    let requests = |doc: &Value| -> BTreeSet<String> {
        doc["events"]
            .as_array()
            .expect("events")
            .iter()
            .map(|e| json_text(&e["request_id"]))
            .collect()
    };
    let set =
        |names: &[&str]| -> BTreeSet<String> { names.iter().map(|n| f.id(n).to_owned()).collect() };
    // Same selection as `audit changes` with the same filters.
    for filter in [
        vec!["--outcome", "denied"],
        vec!["--control", "PCI-DSS-4.0:6.2"],
        vec!["--risk", "low", "--risk", "critical"],
        vec!["--outcome", "succeeded", "--control", "SOC2:CC8.1"],
    ] {
        let doc = query(&filter)?;
        assert_eq!(doc["verified"], true);
        let expected: BTreeSet<String> = ids_of(&changes_json(&f, &filter)?).into_iter().collect();
        assert!(!expected.is_empty(), "{filter:?}");
        assert_eq!(requests(&doc), expected, "{filter:?}");
    }
    assert_eq!(
        requests(&query(&["--outcome", "denied"])?),
        set(&["denied", "policy_denied"])
    );
    // Event filters still apply: the proposals of the high-risk changes.
    let doc = query(&["--risk", "high", "--kind", "action.proposed"])?;
    assert_eq!(doc["events"].as_array().expect("events").len(), 4);
    // Every event of a change: proposal, approval, start, completion,
    // annotations.
    let doc = query(&["--outcome", "succeeded", "--model", "claude-sonnet"])?;
    let kinds: BTreeSet<String> = doc["events"]
        .as_array()
        .expect("events")
        .iter()
        .map(|e| json_text(&e["kind"]))
        .collect();
    for kind in [
        "action.proposed",
        "action.approved",
        "execution.started",
        "execution.completed",
        "annotation",
    ] {
        assert!(kinds.contains(kind), "{kind} in {kinds:?}");
    }
    assert_eq!(
        query(&["--model", "gpt-nothing"])?["events"],
        serde_json::json!([])
    );
    // The JSONL form is the canonical bytes, the same events.
    let mut args = vec!["audit", "query", "--outcome", "denied"];
    args.extend(f.store_args());
    let lines = ok(&args);
    assert_eq!(lines.lines().count(), 4, "{lines}");
    // Without change filters, the store's index is read as before.
    let doc = query(&["--kind", "action.denied"])?;
    assert_eq!(doc["verified"], false);
    assert_eq!(doc["integrity"], Value::Null);
    assert_eq!(requests(&doc), set(&["denied", "policy_denied"]));
    // A bad value is refused with exit 2, naming what is accepted.
    let mut args = vec!["audit", "query", "--outcome", "finished"];
    args.extend(f.store_args());
    let out = syndicate(&args);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        text(&out).contains("is not one of succeeded"),
        "{}",
        text(&out)
    );
    // The table lines up under its header.
    let mut args = vec!["audit", "query", "--format", "table", "--outcome", "denied"];
    args.extend(f.store_args());
    let table = ok(&args);
    let header = table.lines().next().expect("header");
    let at = header.find("KIND").expect("KIND");
    for line in table.lines().skip(1) {
        assert!(line[at..].starts_with("action."), "{table}");
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn verify_json_and_report_give_the_time_span_head_and_story() -> Result {
    let f = Fixture::build().await?;
    let integrity = changes_json(&f, &[])?["integrity"].clone();
    let verify = || {
        let mut args = vec!["audit", "verify", "--format", "json"];
        args.extend(f.store_args());
        syndicate(&args)
    };
    let out = verify();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let doc: Value = serde_json::from_slice(&out.stdout)?;
    assert_eq!(doc["format"], "syndicate-verify/v1");
    assert_eq!(doc["chain"], "prod");
    assert_eq!(doc["intact"], true);
    assert_eq!(doc["events"], integrity["events"]);
    assert_eq!(doc["first_seq"], 0);
    assert_eq!(doc["head_seq"], integrity["head_seq"]);
    assert_eq!(doc["head_hash"], integrity["head_hash"]);
    assert_eq!(doc["first_at"], integrity["first_at"]);
    assert_eq!(doc["last_at"], integrity["last_at"]);
    assert_eq!(doc["violation"], Value::Null);
    assert_eq!(doc["checkpoint"], Value::Null);
    assert_eq!(doc["story"]["holds"], true);
    assert_eq!(doc["story"]["requests"], 9);

    // The report states the span the chain covers, first and last `at`.
    let mut args = vec!["audit", "report"];
    args.extend(f.store_args());
    let report = ok(&args);
    let (first, last) = (
        json_text(&integrity["first_at"]),
        json_text(&integrity["last_at"]),
    );
    assert!(first < last, "{first} .. {last}");
    assert!(
        report.contains(&format!("time span: {first} .. {last}")),
        "{report}"
    );
    args.extend(["--format", "json"]);
    let json: Value = serde_json::from_str(&ok(&args))?;
    assert_eq!(json["format"], "syndicate-report/v1");
    assert_eq!(json["span"], serde_json::json!([first, last]));

    // A story violation: exit 1, and the JSON names rule, seq and request.
    let seq = forge_start(&f, "pending", "s-pending").await?;
    let out = verify();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let doc: Value = serde_json::from_slice(&out.stdout)?;
    assert_eq!(doc["intact"], true);
    assert_eq!(doc["story"]["holds"], false);
    let v = &doc["story"]["violations"][0];
    assert_eq!(
        (&v["rule"], &v["seq"], &v["request_id"]),
        (
            &Value::from("start_without_approval"),
            &Value::from(seq),
            &Value::from(f.id("pending"))
        )
    );
    // Broken integrity: the bad seq and check, no story.
    let db = rusqlite::Connection::open(&f.db)?;
    db.execute("UPDATE events SET session = 'edited' WHERE seq = 3", [])?;
    drop(db);
    let out = verify();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let doc: Value = serde_json::from_slice(&out.stdout)?;
    assert_eq!(doc["intact"], false);
    assert_eq!(doc["violation"]["seq"], 3);
    assert_eq!(doc["violation"]["check"], "column session");
    assert_eq!(doc["story"], Value::Null);
    Ok(())
}
