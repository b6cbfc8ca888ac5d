//! The guest half of `cargo xtask bench dataflow`: graphs and tensors in SIS under QEMU (wall clock).
//!
//! Each repetition runs, in one boot, four graphs and the matmul bench:
//! - two operators (scalar source → sink) and four (source → two `add-scalar` maps → sink) moving the same
//!   items through `block` channels of 64: items per second, and the cost of one more hop (operator thread
//!   plus channel) from the difference;
//! - 4 KiB tensors (32 × 32) source → sink: MiB/s (the source's generator is included);
//! - a paced four-stage pipeline (1,000 items per second): end-to-end latency p50/p99 at the sink;
//! - `tensorctl bench`: matmul GFLOP/s on the vector unit against a plain software loop.

use serde_json::Value;
use sis_testing::QemuConfig;

/// Scalar items per throughput graph.
const ITEMS: u64 = 20_000;
/// Tensor items (4 KiB each).
const TENSORS: u64 = 2_000;
/// Items of the paced pipeline.
const PACED: u64 = 500;

fn commands(run: u32) -> String {
    let chain = |name: &str, maps: usize| {
        let mut text = format!(
            "graphctl create {name}; graphctl add-op {name} source --name s --count {ITEMS} --seed {run}; graphctl add-op {name} sink --name k; "
        );
        let mut previous = String::from("s");
        for index in 0..maps {
            text += &format!("graphctl add-op {name} map --name m{index} --op add-scalar --value 1; ");
            text += &format!("graphctl connect {name} {previous} m{index} --capacity 64; ");
            previous = format!("m{index}");
        }
        text += &format!(
            "graphctl connect {name} {previous} k --capacity 64; graphctl start {name}; graphctl wait {name}; graphctl stats {name} --json; graphctl destroy {name}; "
        );
        text
    };
    let mut text = chain("two", 0) + &chain("four", 2);
    text += &format!(
        "graphctl create t; graphctl add-op t source --name s --shape 32x32 --count {TENSORS} --seed {run}; graphctl add-op t sink --name k; \
         graphctl connect t s k --capacity 64; graphctl start t; graphctl wait t; graphctl stats t --json; graphctl destroy t; "
    );
    text += &format!(
        "graphctl create p; graphctl add-op p source --name s --shape 8x8 --count {PACED} --rate 1000 --seed {run}; \
         graphctl add-op p map --name a --op relu; graphctl add-op p map --name b --op mul-scalar --value 2; graphctl add-op p sink --name k; \
         graphctl connect p s a; graphctl connect p a b; graphctl connect p b k; graphctl start p; graphctl wait p; graphctl stats p --json; graphctl destroy p; "
    );
    text += "tensorctl bench --size 64 --repeat 5 --json";
    text
}

/// One repetition's figures.
struct Figures {
    two_items_per_s: f64,
    four_items_per_s: f64,
    hop_ns: f64,
    tensor_mib_per_s: f64,
    latency_p50_ns: f64,
    latency_p99_ns: f64,
    gflops: f64,
    reference_gflops: f64,
}

fn sink(stats: &Value, expected_items: u64) -> Result<&Value, String> {
    let sink = stats["ops"]
        .as_array()
        .and_then(|ops| ops.iter().find(|op| op["sink"].is_object()))
        .map(|op| &op["sink"])
        .ok_or("a graph's stats have no sink")?;
    if sink["items"].as_u64() != Some(expected_items) {
        return Err(format!("the sink got {} items, expected {expected_items}", sink["items"]));
    }
    Ok(sink)
}

fn elapsed_s(stats: &Value) -> Result<f64, String> {
    stats["elapsed_ns"]
        .as_u64()
        .filter(|&ns| ns > 0)
        .map(|ns| ns as f64 / 1e9)
        .ok_or_else(|| "no elapsed_ns".to_string())
}

fn figures(run: u32) -> Result<Figures, String> {
    let batch = commands(run);
    let replies =
        crate::bench::batch_replies(&QemuConfig::new().batch(&batch).timeout(std::time::Duration::from_secs(300)))?;
    let [two, four, tensors, paced, matmul] = replies.as_slice() else {
        return Err(format!("expected 5 JSON replies, got {}", replies.len()));
    };
    sink(two, ITEMS)?;
    sink(four, ITEMS)?;
    sink(tensors, TENSORS)?;
    let latency = &sink(paced, PACED)?["latency"];
    let (two_s, four_s) = (elapsed_s(two)?, elapsed_s(four)?);
    if matmul["bitwise_equal"] != true {
        return Err("tensorctl bench: the library's matmul differs from the reference loop".into());
    }
    Ok(Figures {
        two_items_per_s: ITEMS as f64 / two_s,
        four_items_per_s: ITEMS as f64 / four_s,
        // Two more operators and two more channels carry every item.
        hop_ns: (four_s - two_s) * 1e9 / (2.0 * ITEMS as f64),
        tensor_mib_per_s: TENSORS as f64 * 4096.0 / elapsed_s(tensors)? / (1024.0 * 1024.0),
        latency_p50_ns: latency["p50_ns"].as_u64().unwrap_or(0) as f64,
        latency_p99_ns: latency["p99_ns"].as_u64().unwrap_or(0) as f64,
        gflops: matmul["library_gflops"].as_f64().unwrap_or(0.0),
        reference_gflops: matmul["reference_gflops"].as_f64().unwrap_or(0.0),
    })
}

/// Runs `repetitions` boots and prints each and the medians.
pub fn run(repetitions: u32) -> Result<(), String> {
    println!("\nin QEMU (wall clock, one boot per run; operators are kernel threads on one CPU):");
    let mut runs = Vec::new();
    for run in 1..=repetitions {
        let figures = figures(run)?;
        println!(
            "  run {run}: 2 ops {:.0} items/s, 4 ops {:.0} items/s, one more hop {:.0} ns; 4 KiB tensors {:.1} MiB/s; \
             paced 4-stage latency p50 {:.0} µs p99 {:.0} µs; matmul 64 {:.3} GFLOP/s (software loop {:.3})",
            figures.two_items_per_s,
            figures.four_items_per_s,
            figures.hop_ns,
            figures.tensor_mib_per_s,
            figures.latency_p50_ns / 1e3,
            figures.latency_p99_ns / 1e3,
            figures.gflops,
            figures.reference_gflops
        );
        runs.push(figures);
    }
    let median = |field: fn(&Figures) -> f64| crate::bench::median_of(&runs, field);
    println!("  median of {repetitions}:");
    println!(
        "    scalar items through source -> sink: {:.0} items/s ({:.0} ns per item)",
        median(|f| f.two_items_per_s),
        1e9 / median(|f| f.two_items_per_s)
    );
    println!(
        "    through source -> map -> map -> sink: {:.0} items/s; each extra hop (operator thread + channel) {:.0} ns",
        median(|f| f.four_items_per_s),
        median(|f| f.hop_ns)
    );
    println!("    4 KiB tensors source -> sink: {:.1} MiB/s (generation included)", median(|f| f.tensor_mib_per_s));
    println!(
        "    paced 4-stage pipeline (1,000 items/s) end to end: p50 {:.0} µs, p99 {:.0} µs",
        median(|f| f.latency_p50_ns) / 1e3,
        median(|f| f.latency_p99_ns) / 1e3
    );
    println!(
        "    matmul 64x64: {:.3} GFLOP/s on the vector unit, {:.3} GFLOP/s in the software loop ({:.1}x), results equal bit for bit",
        median(|f| f.gflops),
        median(|f| f.reference_gflops),
        median(|f| f.gflops) / median(|f| f.reference_gflops).max(1e-12)
    );
    Ok(())
}
