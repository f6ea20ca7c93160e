//! The flow cap (`--max-flows`) is one total for the whole classifier, whatever the number of
//! threads: the workers' shares add up to it, so `--max-flows 10 --threads 8` never holds more
//! than 10 flows (it once held up to 7 per worker), and which flows are evicted depends on the
//! key-space shards alone, so the output is the same for any number of threads. Memory is
//! checked by counting the flows held, not by measuring it.

mod common;

use std::sync::Arc;

use appletap::capture::file::CaptureFile;
use appletap::pipeline::{Classifier, ClassifierConfig, EngineConfig, Totals};
use appletap::signature::SignatureSet;
use common::shared_captures;

/// What a run over every shared capture (as one input after another) gave.
struct Run {
    /// The final totals.
    totals: Totals,
    /// Every flow record, as JSON, sorted (workers hand them over in their own order).
    records: Vec<String>,
    /// The most flows held at once, asked after every packet.
    peak_held: usize,
}

fn run(threads: usize, max_flows: usize) -> Run {
    let sigs = Arc::new(SignatureSet::builtin().unwrap());
    let config = ClassifierConfig {
        engine: EngineConfig {
            max_flows,
            ..EngineConfig::default()
        },
        threads,
        drop_when_full: false,
    };
    let (tx, rx) = crossbeam_channel::unbounded();
    let mut classifier = Classifier::new(sigs, config, Some(tx));
    let mut peak_held = 0;
    for path in shared_captures() {
        let mut capture = CaptureFile::open(&path).unwrap();
        while let Some(Ok(pkt)) = capture.next_packet() {
            classifier.push(&pkt);
            // With threads, this hands every batch on and waits for each worker's count: the
            // flows held after exactly the packets pushed so far.
            let held = classifier.progress().active_flows;
            assert!(
                held <= max_flows,
                "{held} flows held with --max-flows {max_flows} --threads {threads}"
            );
            peak_held = peak_held.max(held);
        }
        classifier.end_of_input();
    }
    let totals = classifier.finish();
    let mut records: Vec<String> = rx
        .try_iter()
        .flatten()
        .map(|r| serde_json::to_string(&r).unwrap())
        .collect();
    records.sort();
    Run {
        totals,
        records,
        peak_held,
    }
}

/// Flows counted in all: every flow ends once and is tallied under one service.
fn flows(t: &Totals) -> u64 {
    t.counters.tally.nonzero().map(|(_, s)| s.flows).sum()
}

#[test]
fn the_flow_cap_is_one_total_for_any_number_of_threads() {
    for max_flows in [10, 100] {
        let one = run(1, max_flows);
        let total = flows(&one.totals);
        assert!(
            total > 10 * max_flows as u64,
            "{total} flows: the captures must overflow a cap of {max_flows} many times"
        );
        assert!(one.totals.evicted > 0, "the cap of {max_flows} was reached");
        // Each shard fills its own share, so the whole cap is reached only when every shard is
        // full at once.
        assert!(
            one.peak_held > 0 && one.peak_held <= max_flows,
            "{} flows held at once with --max-flows {max_flows} --threads 1",
            one.peak_held
        );
        assert_eq!(one.records.len() as u64, total, "one record per flow");
        for threads in [2, 3, 5, 8] {
            let n = run(threads, max_flows);
            assert!(
                n.peak_held <= max_flows,
                "{} flows held at once with --max-flows {max_flows} --threads {threads}",
                n.peak_held
            );
            assert_eq!(
                flows(&n.totals),
                total,
                "flows with --max-flows {max_flows} --threads {threads}"
            );
            // What the report shows of the counters. (Not why flows ended, which no output
            // shows: a worker's clock moves only with its own packets, so at a new stretch of
            // capture a flow idle by the run's clock may end as idle with one worker and at
            // the restart with another.)
            let (a, b) = (&n.totals.counters, &one.totals.counters);
            let what = format!("with --max-flows {max_flows} --threads {threads}");
            assert_eq!(a.packets, b.packets, "packets {what}");
            assert!(a.tally == b.tally, "per-service tallies {what}");
            assert!(a.outcomes == b.outcomes, "connection outcomes {what}");
            assert_eq!(
                n.totals.names.bonjour, one.totals.names.bonjour,
                "Bonjour {what}"
            );
            assert!(
                n.records == one.records,
                "flow records with --max-flows {max_flows} --threads {threads} differ from \
                 one thread's ({} vs {})",
                n.records.len(),
                one.records.len()
            );
        }
    }
}

#[test]
fn evictions_are_the_same_for_any_number_of_threads() {
    for max_flows in [10, 100] {
        let one = run(1, max_flows).totals.evicted;
        for threads in [2, 3, 5, 8] {
            assert_eq!(
                run(threads, max_flows).totals.evicted,
                one,
                "evictions with --max-flows {max_flows} --threads {threads}"
            );
        }
    }
}
