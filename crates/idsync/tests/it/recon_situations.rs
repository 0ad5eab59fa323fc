//! Every situation produced by a fixture and acted on, through the `idsync recon` binary, and
//! the same scenario under each tuning knob giving identical results (issue 5).

use crate::support::{Project, csv_rows};
use serde_json::Value;

const MAPPING: &str = "src_dst";

fn situations(s: &Value) -> Vec<(String, i64)> {
    let mut v: Vec<(String, i64)> = s["situationSummary"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, n)| (k.clone(), n.as_i64().unwrap()))
        .filter(|(_, n)| *n > 0)
        .collect();
    v.sort();
    v
}

fn uids(p: &Project, file: &str) -> Vec<String> {
    let mut v: Vec<String> = csv_rows(&p.read(file))
        .into_iter()
        .map(|r| r["uid"].clone())
        .collect();
    v.sort();
    v
}

fn pair(k: &str, n: i64) -> (String, i64) {
    (k.to_string(), n)
}

/// Runs the two-run scenario on a copy of the fixture with `tweak` applied to the mapping,
/// returning both summaries and the final target file.
fn scenario(tweak: &dyn Fn(&mut Value)) -> (Value, Value, Vec<String>) {
    let p = Project::copy_of("crates/idsync/tests/fixtures/situations");
    let mut sync: Value = serde_json::from_str(&p.read("conf/sync.json")).unwrap();
    tweak(&mut sync["mappings"][0]);
    p.write(
        "conf/sync.json",
        &serde_json::to_string_pretty(&sync).unwrap(),
    );

    let (code, first) = p.recon_json(MAPPING, &[]);
    assert_eq!(code, 0, "{first:#}");

    // Between the runs: the source loses h and gains b2 (b's e-mail); the target loses A1.
    let src = p.read("data/src.csv").replace("h,Hal,h@x,active\n", "") + "b2,Bo2,b@x,active\n";
    p.write("data/src.csv", &src);
    let dst = p.read("data/dst.csv");
    let dst: String = dst
        .lines()
        .filter(|l| !l.starts_with("A1,"))
        .map(|l| format!("{l}\n"))
        .collect();
    p.write("data/dst.csv", &dst);

    let (code, second) = p.recon_json(MAPPING, &[]);
    assert_eq!(code, 0, "{second:#}");
    let final_uids = uids(&p, "data/dst.csv");
    (first, second, final_uids)
}

#[test]
fn every_situation_is_assessed_and_acted_on() {
    let (first, second, final_uids) = scenario(&|_| {});
    assert_eq!(
        situations(&first),
        vec![
            pair("ABSENT", 22),
            pair("AMBIGUOUS", 1),
            pair("FOUND", 1),
            pair("SOURCE_IGNORED", 1),
            pair("TARGET_IGNORED", 1),
            pair("UNASSIGNED", 1),
            pair("UNQUALIFIED", 1),
        ],
        "{first:#}"
    );
    assert_eq!(first["progress"]["target"]["created"], 22);
    assert_eq!(
        first["progress"]["target"]["deleted"], 2,
        "E1 (UNQUALIFIED) and Z1 (UNASSIGNED)"
    );
    assert_eq!(
        first["statusSummary"]["FAILURE"], 0,
        "EXCEPTION counts as SUCCESS: {first:#}"
    );
    assert_eq!(
        situations(&second),
        vec![
            pair("AMBIGUOUS", 1),
            pair("CONFIRMED", 21),
            pair("FOUND_ALREADY_LINKED", 1),
            pair("MISSING", 1),
            pair("SOURCE_IGNORED", 2),
            pair("SOURCE_MISSING", 1),
            pair("TARGET_IGNORED", 1),
        ],
        "{second:#}"
    );
    assert_eq!(
        second["progress"]["target"]["created"], 1,
        "MISSING → CREATE re-creates a"
    );
    assert_eq!(
        second["progress"]["target"]["deleted"], 1,
        "SOURCE_MISSING → DELETE removes h"
    );
    assert!(final_uids.contains(&"a".to_string()), "{final_uids:?}");
    assert!(!final_uids.contains(&"h".to_string()), "{final_uids:?}");
    assert!(!final_uids.contains(&"Z1".to_string()), "{final_uids:?}");
    assert!(final_uids.contains(&"C1".to_string()) && final_uids.contains(&"C2".to_string()));
    assert!(
        final_uids.contains(&"L1".to_string()),
        "TARGET_IGNORED → REPORT keeps it"
    );
}

#[test]
fn tuning_knobs_do_not_change_the_outcome() {
    let baseline = scenario(&|_| {});
    type Tweak = Box<dyn Fn(&mut Value)>;
    let variants: Vec<(&str, Tweak)> = vec![
        ("taskThreads 0", Box::new(|m| m["taskThreads"] = 0.into())),
        ("taskThreads 10", Box::new(|m| m["taskThreads"] = 10.into())),
        (
            "paging by 7",
            Box::new(|m| {
                m["reconSourceQueryPaging"] = true.into();
                m["reconSourceQueryPageSize"] = 7.into();
            }),
        ),
        (
            "prefetchLinks false",
            Box::new(|m| m["prefetchLinks"] = false.into()),
        ),
        (
            "full-entry queries",
            Box::new(|m| {
                m["sourceQueryFullEntry"] = true.into();
                m["targetQueryFullEntry"] = true.into();
                m["targetQuery"] = serde_json::json!({"_queryFilter": "true"});
            }),
        ),
        (
            "id-only source query",
            Box::new(|m| m["sourceQuery"] = serde_json::json!({"_queryId": "query-all-ids"})),
        ),
    ];
    for (name, tweak) in variants {
        let got = scenario(tweak.as_ref());
        assert_eq!(
            situations(&got.0),
            situations(&baseline.0),
            "{name}: first run"
        );
        assert_eq!(
            situations(&got.1),
            situations(&baseline.1),
            "{name}: second run"
        );
        assert_eq!(got.2, baseline.2, "{name}: final target");
    }
}
