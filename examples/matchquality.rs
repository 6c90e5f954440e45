//! Person matching quality on synthetic people: precision, recall and F1
//! of the matcher at the default thresholds against the truth, beside an
//! exact-identifier baseline.
//!
//! `cargo run --release --example matchquality -- [PEOPLE] [SEED...]`
//! (default 100000 people, seeds 1 2 3).

use accord::matching::Matcher;
use accord::matching::quality::evaluate;
use accord::matching::synthetic::{ErrorRates, Generator};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let people: usize = args.first().and_then(|a| a.parse().ok()).unwrap_or(100_000);
    let mut seeds: Vec<u64> = args.iter().skip(1).filter_map(|a| a.parse().ok()).collect();
    if seeds.is_empty() {
        seeds = vec![1, 2, 3];
    }
    let rates = ErrorRates::default();
    let matcher = Matcher::default();
    println!("error rates per copy: {rates:?}");
    println!(
        "seed  registered  probes  true_pairs  precision  recall  f1      review/probe  blocking_recall  mean_cand  max_cand  baseline_p  baseline_r  baseline_f1"
    );
    for seed in seeds {
        let data = Generator::new(seed).dataset(people, &rates);
        let q = evaluate(&data, &matcher);
        println!(
            "{seed:<4}  {:<10}  {:<6}  {:<10}  {:<9.4}  {:<6.4}  {:<6.4}  {:<12.4}  {:<15.4}  {:<9.1}  {:<8}  {:<10.4}  {:<10.4}  {:.4}",
            data.registered.len(),
            q.probes,
            q.true_pairs,
            q.precision(),
            q.recall(),
            q.f1(),
            q.review_share(),
            q.blocking_recall(),
            q.mean_candidates,
            q.max_candidates,
            q.baseline_precision(),
            q.baseline_recall(),
            q.baseline_f1(),
        );
        if std::env::var_os("MATCH_EXAMPLES").is_some() {
            for m in &q.missed {
                println!("missed: {m}");
            }
            for w in &q.wrong {
                println!("wrong: {w}");
            }
        }
    }
}
