//! `tensorctl`: named f32 tensors, operations on them, and the guest's matmul rate (the store: `crate::dataflow::tensors`).

use alloc::string::String;
use alloc::vec::Vec;

use serde_json::json;
use sis_dataflow::tensor::{Budget, Tensor, TensorError, MAX_ELEMENTS};
use sis_platform::time;
use sis_shell::{ArgSpec, ArgValue, CommandSpec, Invocation, Reply, ShellError, ValueKind};

use super::Kernel;
use crate::dataflow::tensors::{self, StoreError};
use crate::format;

const NAME: ValueKind = ValueKind::Str;
const DIMENSIONS: ValueKind = ValueKind::Custom { value_name: "AxB...", parse: parse_dimensions };
const FLOAT: ValueKind = ValueKind::Custom { value_name: "X", parse: parse_float };
const FLOATS: ValueKind = ValueKind::Custom { value_name: "X,Y,...", parse: parse_floats };
const OPS: &[&str] = &[
    "add",
    "sub",
    "mul",
    "matmul",
    "relu",
    "softmax",
    "sum",
    "mean",
    "transpose",
    "reshape",
    "add-scalar",
    "mul-scalar",
];

/// `tensorctl`.
pub static TENSORCTL: CommandSpec<Kernel> = CommandSpec {
    name: "tensorctl",
    summary: "Named f32 tensors: create, operate (add, sub, mul, matmul, relu, softmax, sum, mean, transpose, reshape), show, free",
    description: "Tensors live in one store with its own byte budget (default 8 MiB; tensorctl budget). Every result is computed by the same library the dataflow graphs use (sis-dataflow), whose results equal a plain reference loop bit for bit; show prints the values and the FNV-1a checksum of their bits. docs/dataflow.md.",
    args: &[],
    subcommands: &[
        CommandSpec {
            name: "create",
            summary: "Create NAME with --shape, filled with zeros or --fill X, --random SEED, --arange START,STEP or --values X,Y,...",
            description: "",
            args: &[
                ArgSpec::positional("name", NAME, "tensor name").required(),
                ArgSpec::flag("shape", DIMENSIONS, "shape, e.g. 2x3 (1 to 4 axes)").required(),
                ArgSpec::flag("fill", FLOAT, "every element X"),
                ArgSpec::flag("random", ValueKind::U64 { min: 0, max: u64::MAX }, "uniform in [-1, 1) from this seed"),
                ArgSpec::flag("arange", FLOATS, "START,STEP: element i = START + i x STEP"),
                ArgSpec::flag("values", FLOATS, "every element, row-major"),
            ],
            subcommands: &[],
            handler: Some(create),
        },
        CommandSpec {
            name: "op",
            summary: "OUT = OP(A [, B]): add, sub, mul (broadcast), matmul, relu, softmax, sum, mean (--axis), transpose, reshape (--shape), add-scalar, mul-scalar (--value)",
            description: "",
            args: &[
                ArgSpec::positional("op", ValueKind::Choice(OPS), "operation").required(),
                ArgSpec::positional("a", NAME, "first operand").required(),
                ArgSpec::positional("b", NAME, "second operand (add, sub, mul, matmul)"),
                ArgSpec::flag("out", NAME, "name of the result").required(),
                ArgSpec::flag("value", FLOAT, "constant of add-scalar / mul-scalar"),
                ArgSpec::flag("axis", ValueKind::U64 { min: 0, max: 3 }, "sum / mean over this axis only"),
                ArgSpec::flag("shape", DIMENSIONS, "reshape target"),
            ],
            subcommands: &[],
            handler: Some(op),
        },
        CommandSpec {
            name: "show",
            summary: "A tensor's shape, strides, bytes, checksum and values (the first --limit)",
            description: "",
            args: &[
                ArgSpec::positional("name", NAME, "tensor name").required(),
                ArgSpec::flag("limit", ValueKind::U64 { min: 0, max: 4096 }, "values shown").default("64"),
            ],
            subcommands: &[],
            handler: Some(show),
        },
        CommandSpec {
            name: "list",
            summary: "Every tensor and the store's budget",
            description: "",
            args: &[],
            subcommands: &[],
            handler: Some(list),
        },
        CommandSpec {
            name: "free",
            summary: "Free a tensor (--all: every tensor)",
            description: "",
            args: &[ArgSpec::positional("name", NAME, "tensor name"), ArgSpec::flag("all", ValueKind::Switch, "free every tensor")],
            subcommands: &[],
            handler: Some(free),
        },
        CommandSpec {
            name: "budget",
            summary: "Set the store's byte budget, KiB (only while it holds no tensor)",
            description: "",
            args: &[ArgSpec::positional("kib", ValueKind::U64 { min: 1, max: 256 * 1024 }, "budget, KiB").required()],
            subcommands: &[],
            handler: Some(budget),
        },
        CommandSpec {
            name: "bench",
            summary: "Matmul rate in the guest: N x N times N x N, --repeat times, against the plain reference loop",
            description: "Both operands are drawn from --seed; the library's matmul (on the FPU through the vector unit) and a plain triple loop in software f32 run the same products, their results are compared bit for bit, and each rate is 2N^3 flops over the median time.",
            args: &[
                ArgSpec::flag("size", ValueKind::U64 { min: 1, max: 512 }, "N").default("64"),
                ArgSpec::flag("repeat", ValueKind::U64 { min: 1, max: 1000 }, "products timed, each way").default("5"),
                ArgSpec::flag("seed", ValueKind::U64 { min: 0, max: u64::MAX }, "operand seed").default("1"),
            ],
            subcommands: &[],
            handler: Some(bench),
        },
    ],
    handler: None,
};

fn parse_float(text: &str) -> Result<ArgValue, String> {
    floats(text).and_then(|values| match values.as_slice() {
        [_] => Ok(ArgValue::Str(text.into())),
        _ => Err(alloc::format!("{text:?}: one number")),
    })
}

fn parse_floats(text: &str) -> Result<ArgValue, String> {
    floats(text).map(|_| ArgValue::Str(text.into()))
}

/// Finite f32 values separated by commas.
fn floats(text: &str) -> Result<Vec<f32>, String> {
    text.split(',')
        .map(|part| match part.trim().parse::<f32>() {
            Ok(value) if value.is_finite() => Ok(value),
            _ => Err(alloc::format!("{part:?} is not a finite number")),
        })
        .collect()
}

fn parse_dimensions(text: &str) -> Result<ArgValue, String> {
    dimensions(text).map(|_| ArgValue::Str(text.into()))
}

/// `2x3` or `2,3`: sizes the tensor library then checks (rank, zero axes, total size).
fn dimensions(text: &str) -> Result<Vec<usize>, String> {
    super::sizes::split(text).ok_or_else(|| alloc::format!("{text:?}: sizes separated by x or ,"))
}

fn store_error(error: StoreError) -> ShellError {
    ShellError::new(error.code(), alloc::format!("{error}"))
}

fn tensor_error(error: TensorError) -> ShellError {
    ShellError::new(error.code(), alloc::format!("{error}"))
}

fn name(invocation: &Invocation<'_>, key: &str) -> String {
    String::from(invocation.args.str(key).unwrap_or_default())
}

fn create(_: &mut Kernel, invocation: &mut Invocation<'_>) -> Result<Reply, ShellError> {
    let args = &invocation.args;
    let name = name(invocation, "name");
    if !sis_dataflow::graph::is_valid_name(&name) {
        return Err(ShellError::new(
            "bad-name",
            alloc::format!("bad name {name:?}: 1 to 32 letters, digits, '-' or '_'"),
        ));
    }
    let shape =
        dimensions(args.str("shape").unwrap_or_default()).map_err(|reason| ShellError::new("bad-shape", reason))?;
    let given = ["fill", "random", "arange", "values"].iter().filter(|key| args.value(key).is_some()).count();
    if given > 1 {
        return Err(ShellError::new("conflicting-options", "at most one of --fill, --random, --arange, --values"));
    }
    let list = |key: &str| args.str(key).map(floats).transpose().map_err(|reason| ShellError::new("bad-value", reason));
    let fill = list("fill")?.map(|values| values[0]);
    let arange = list("arange")?;
    let values = list("values")?;
    let seed = args.u64("random");
    if let Some(arange) = &arange {
        if arange.len() != 2 {
            return Err(ShellError::new("bad-value", "--arange takes START,STEP"));
        }
    }
    tensors::insert(&name, |budget| match (fill, seed, arange, values) {
        (Some(value), _, _, _) => Tensor::full(budget, &shape, value),
        (_, Some(seed), _, _) => Tensor::random(budget, &shape, seed),
        (_, _, Some(arange), _) => Tensor::arange(budget, &shape, arange[0], arange[1]),
        (_, _, _, Some(values)) => Tensor::from_vec(budget, &shape, values),
        _ => Tensor::zeros(budget, &shape),
    })
    .map_err(store_error)?;
    describe(&name, 16)
}

fn op(_: &mut Kernel, invocation: &mut Invocation<'_>) -> Result<Reply, ShellError> {
    let args = &invocation.args;
    let operation = String::from(args.str("op").unwrap_or_default());
    let (a, b, out) = (name(invocation, "a"), args.str("b").map(String::from), name(invocation, "out"));
    let binary = matches!(operation.as_str(), "add" | "sub" | "mul" | "matmul");
    let names: Vec<&str> = match (&b, binary) {
        (Some(b), true) => alloc::vec![a.as_str(), b.as_str()],
        (None, true) => {
            return Err(ShellError::new("missing-operand", alloc::format!("{operation} takes two tensors")))
        }
        (Some(_), false) => {
            return Err(ShellError::new("extra-operand", alloc::format!("{operation} takes one tensor")))
        }
        (None, false) => alloc::vec![a.as_str()],
    };
    let value = args.str("value").and_then(|text| floats(text).ok()).map(|values| values[0]);
    let axis = args.u64("axis").map(|axis| axis as usize);
    let shape = args.str("shape").map(dimensions).transpose().map_err(|reason| ShellError::new("bad-shape", reason))?;
    let need = |what: Option<()>, flag: &str| {
        what.ok_or_else(|| ShellError::new("missing-option", alloc::format!("{operation} needs --{flag}")))
    };
    match operation.as_str() {
        "add-scalar" | "mul-scalar" => need(value.map(|_| ()), "value")?,
        "reshape" => need(shape.as_ref().map(|_| ()), "shape")?,
        _ => {}
    }
    if !sis_dataflow::graph::is_valid_name(&out) {
        return Err(ShellError::new(
            "bad-name",
            alloc::format!("bad name {out:?}: 1 to 32 letters, digits, '-' or '_'"),
        ));
    }
    let started = time::now_ns();
    let result = tensors::with_tensors(&names, |operands| {
        let x = operands[0];
        match operation.as_str() {
            "add" => x.add(operands[1]),
            "sub" => x.sub(operands[1]),
            "mul" => x.mul(operands[1]),
            "matmul" => x.matmul(operands[1]),
            "relu" => x.relu(),
            "softmax" => x.softmax(),
            "sum" => x.sum(axis),
            "mean" => x.mean(axis),
            "transpose" => x.transpose(),
            "reshape" => x.reshape(shape.as_deref().unwrap_or_default()),
            "add-scalar" => x.add_scalar(value.unwrap_or_default()),
            _ => x.mul_scalar(value.unwrap_or_default()),
        }
    })
    .map_err(store_error)?
    .map_err(tensor_error)?;
    let elapsed_ns = time::now_ns().saturating_sub(started);
    tensors::insert(&out, |_| Ok(result)).map_err(store_error)?;
    let mut reply = describe(&out, 16)?;
    reply.human = alloc::format!(
        "{out} = {operation}({}) in {} µs\n{}",
        names.join(", "),
        format::thousands(elapsed_ns / 1_000),
        reply.human
    );
    reply.json.insert("op".into(), json!(operation));
    reply.json.insert("operands".into(), json!(names));
    reply.json.insert("elapsed_ns".into(), json!(elapsed_ns));
    Ok(reply)
}

/// A tensor's figures and its first `limit` values.
fn describe(name: &str, limit: usize) -> Result<Reply, ShellError> {
    tensors::with_tensors(&[name], |found| {
        let tensor = found[0];
        let values = tensor.to_vec();
        let shown: Vec<f32> = values.iter().copied().take(limit).collect();
        let checksum = alloc::format!("{:016x}", tensor.checksum());
        let text: Vec<String> = shown.iter().map(|value| alloc::format!("{value}")).collect();
        let more = if values.len() > shown.len() {
            alloc::format!(" ... ({} more)", values.len() - shown.len())
        } else {
            String::new()
        };
        Reply::new(
            alloc::format!(
                "{name}: shape {:?}, strides {:?}, {} bytes, checksum {checksum}\n  [{}{more}]",
                tensor.shape(),
                tensor.strides(),
                tensor.bytes(),
                text.join(", ")
            ),
            json!({
                "name": name,
                "shape": tensor.shape(),
                "strides": tensor.strides(),
                "contiguous": tensor.is_contiguous(),
                "len": tensor.len(),
                "bytes": tensor.bytes(),
                "checksum": checksum,
                "values": shown,
                // The tensor's own budget is the store's: `tensors::budget()` here would take the store's
                // lock again, held by `with_tensors`, and spin forever.
                "budget": tensor.budget().stats(),
            }),
        )
    })
    .map_err(store_error)
}

fn show(_: &mut Kernel, invocation: &mut Invocation<'_>) -> Result<Reply, ShellError> {
    describe(&name(invocation, "name"), invocation.args.u64("limit").unwrap_or(64) as usize)
}

fn list(_: &mut Kernel, _: &mut Invocation<'_>) -> Result<Reply, ShellError> {
    let all = tensors::list();
    let budget = tensors::budget().stats();
    let mut human = alloc::format!(
        "{} tensor(s); budget {} of {} bytes in use, peak {}, {} refused",
        all.len(),
        format::thousands(budget.used_bytes),
        format::thousands(budget.limit_bytes),
        format::thousands(budget.peak_bytes),
        budget.refusals
    );
    for (name, shape, bytes) in &all {
        human.push_str(&alloc::format!("\n  {name:<16} {shape:?} {} bytes", format::thousands(*bytes)));
    }
    let entries: Vec<serde_json::Value> =
        all.iter().map(|(name, shape, bytes)| json!({ "name": name, "shape": shape, "bytes": bytes })).collect();
    Ok(Reply::new(human, json!({ "tensors": entries, "budget": budget })))
}

fn free(_: &mut Kernel, invocation: &mut Invocation<'_>) -> Result<Reply, ShellError> {
    let freed = match (invocation.args.switch("all"), invocation.args.str("name")) {
        (true, None) => tensors::clear(),
        (false, Some(name)) => {
            tensors::remove(name).map_err(store_error)?;
            1
        }
        _ => return Err(ShellError::new("bad-arguments", "give a NAME or --all")),
    };
    let budget = tensors::budget().stats();
    Ok(Reply::new(
        alloc::format!("freed {freed} tensor(s); {} bytes still charged", format::thousands(budget.used_bytes)),
        json!({ "freed": freed, "budget": budget }),
    ))
}

fn budget(_: &mut Kernel, invocation: &mut Invocation<'_>) -> Result<Reply, ShellError> {
    let limit = invocation.args.u64("kib").unwrap_or(1) * 1024;
    let stats = tensors::set_budget(limit).map_err(store_error)?;
    Ok(Reply::new(alloc::format!("tensor budget {} bytes", format::thousands(limit)), json!({ "budget": stats })))
}

fn bench(_: &mut Kernel, invocation: &mut Invocation<'_>) -> Result<Reply, ShellError> {
    let size = invocation.args.u64("size").unwrap_or(64) as usize;
    let repeat = invocation.args.u64("repeat").unwrap_or(5) as usize;
    let seed = invocation.args.u64("seed").unwrap_or(1);
    debug_assert!(size * size <= MAX_ELEMENTS);
    let budget = Budget::new(64 << 20);
    let a = Tensor::random(&budget, &[size, size], seed).map_err(tensor_error)?;
    let b = Tensor::random(&budget, &[size, size], seed.wrapping_add(1)).map_err(tensor_error)?;
    let (a_values, b_values) = (a.to_vec(), b.to_vec());
    let mut library_ns = Vec::with_capacity(repeat);
    let mut reference_ns = Vec::with_capacity(repeat);
    let mut equal = true;
    for _ in 0..repeat {
        let started = time::now_ns();
        let product = a.matmul(&b).map_err(tensor_error)?;
        library_ns.push(time::now_ns() - started);
        let started = time::now_ns();
        let reference = reference_matmul(&a_values, &b_values, size);
        reference_ns.push(time::now_ns() - started);
        equal &= product.to_vec().iter().zip(&reference).all(|(x, y)| x.to_bits() == y.to_bits());
    }
    let flops = 2.0 * (size as f64) * (size as f64) * (size as f64);
    let library = median(&mut library_ns);
    let reference = median(&mut reference_ns);
    let rate = |ns: u64| flops / ns.max(1) as f64;
    Ok(Reply::new(
        alloc::format!(
            "matmul {size}x{size}: library {} µs ({:.3} GFLOP/s), software reference loop {} µs ({:.3} GFLOP/s), ratio {:.2}x; results {} bit for bit",
            format::thousands(library / 1_000),
            rate(library),
            format::thousands(reference / 1_000),
            rate(reference),
            reference as f64 / library.max(1) as f64,
            if equal { "equal" } else { "DIFFER" }
        ),
        json!({
            "size": size,
            "repeat": repeat,
            "seed": seed,
            "library_median_ns": library,
            "library_gflops": rate(library),
            "reference_median_ns": reference,
            "reference_gflops": rate(reference),
            "speedup": reference as f64 / library.max(1) as f64,
            "bitwise_equal": equal,
        }),
    ))
}

/// The plain loop the library's matmul must equal: start at +0.0, add a x b in ascending k.
fn reference_matmul(a: &[f32], b: &[f32], size: usize) -> Vec<f32> {
    let mut out = alloc::vec![0.0f32; size * size];
    for row in 0..size {
        for column in 0..size {
            let mut sum = 0.0f32;
            for k in 0..size {
                sum += a[row * size + k] * b[k * size + column];
            }
            out[row * size + column] = sum;
        }
    }
    out
}

fn median(values: &mut [u64]) -> u64 {
    values.sort_unstable();
    values[values.len() / 2]
}
