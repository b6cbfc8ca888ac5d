//! The dense layer's loops over a batch of rows, for training: forward (the vector unit's bits), the
//! input deltas and the gradient accumulation.

use sis_ai::LANES;

use crate::model::{padded, Dense};

// The loops below unroll a group of rows by hand.
const _: () = assert!(LANES == 4);

/// `x` when `x > 0`, else +0 (NaN included): the vector unit's ReLU, on the bits.
fn relu(x: f32) -> f32 {
    if x.to_bits().wrapping_sub(1) < 0x7f80_0000 {
        x
    } else {
        0.0
    }
}

/// For each of `rows` rows, `output[row·padded(outputs)..]` = the layer applied to `input[row·stride..]`
/// (`layer.inputs` values), through ReLU when `activate`: the vector unit's forward pass bit for bit
/// (each row's products summed in input order from −0.0, then the bias added).
pub(crate) fn forward(layer: &Dense, input: &[f32], stride: usize, rows: usize, output: &mut [f32], activate: bool) {
    let mut row = 0;
    while row + 4 <= rows {
        forward_rows::<4>(layer, input, stride, row, output, activate);
        row += 4;
    }
    while row < rows {
        forward_rows::<1>(layer, input, stride, row, output, activate);
        row += 1;
    }
}

/// [`forward`] for rows `first..first + S`, each group's weights read once for the S rows.
fn forward_rows<const S: usize>(
    layer: &Dense,
    input: &[f32],
    stride: usize,
    first: usize,
    output: &mut [f32],
    activate: bool,
) {
    let (n, width) = (layer.inputs, padded(layer.outputs));
    let rows: [&[f32]; S] = core::array::from_fn(|k| &input[(first + k) * stride..][..n]);
    let groups = layer.weights.chunks_exact(n * LANES).zip(layer.biases.chunks_exact(LANES));
    for (group, (weights, biases)) in groups.enumerate() {
        let mut sums = [[-0.0f32; LANES]; S];
        for (i, w) in weights.chunks_exact(LANES).enumerate() {
            for (sum, row) in sums.iter_mut().zip(&rows) {
                let x = row[i];
                sum[0] += w[0] * x;
                sum[1] += w[1] * x;
                sum[2] += w[2] * x;
                sum[3] += w[3] * x;
            }
        }
        for (k, sum) in sums.iter().enumerate() {
            let out = &mut output[(first + k) * width + group * LANES..][..LANES];
            for lane in 0..LANES {
                let value = sum[lane] + biases[lane];
                out[lane] = if activate { relu(value) } else { value };
            }
        }
    }
}

/// For each of `rows` rows, `delta_input[row·n..]` (n = `layer.inputs`) = Σ_o w(o, i)·`delta[row·padded(outputs) + o]`,
/// set to 0 where `input[row·stride + i] ≤ 0` when `relu_input` (the input came through a ReLU).
pub(crate) fn backward(
    layer: &Dense,
    delta: &[f32],
    input: &[f32],
    stride: usize,
    rows: usize,
    delta_input: &mut [f32],
    relu_input: bool,
) {
    let (n, width) = (layer.inputs, padded(layer.outputs));
    for row in 0..rows {
        let out = &mut delta_input[row * n..][..n];
        out.fill(0.0);
        let row_delta = &delta[row * width..][..width];
        for (weights, d) in layer.weights.chunks_exact(n * LANES).zip(row_delta.chunks_exact(LANES)) {
            if d.iter().all(|&value| value == 0.0) {
                continue;
            }
            for (value, w) in out.iter_mut().zip(weights.chunks_exact(LANES)) {
                *value += (w[0] * d[0] + w[1] * d[1]) + (w[2] * d[2] + w[3] * d[3]);
            }
        }
        if relu_input {
            for (value, &x) in out.iter_mut().zip(&input[row * stride..][..n]) {
                if x <= 0.0 {
                    *value = 0.0;
                }
            }
        }
    }
}

/// Adds each row's gradient to `gradient` (shaped like `layer`): w(o, i) += delta[o]·input[i], b(o) += delta[o],
/// rows in order.
pub(crate) fn accumulate(gradient: &mut Dense, delta: &[f32], input: &[f32], stride: usize, rows: usize) {
    let (n, width) = (gradient.inputs, padded(gradient.outputs));
    for row in 0..rows {
        let x = &input[row * stride..][..n];
        let row_delta = &delta[row * width..][..width];
        for (weights, d) in gradient.weights.chunks_exact_mut(n * LANES).zip(row_delta.chunks_exact(LANES)) {
            if d.iter().all(|&value| value == 0.0) {
                continue;
            }
            for (w, &xi) in weights.chunks_exact_mut(LANES).zip(x) {
                w[0] += d[0] * xi;
                w[1] += d[1] * xi;
                w[2] += d[2] * xi;
                w[3] += d[3] * xi;
            }
        }
        for (bias, &d) in gradient.biases.iter_mut().zip(row_delta) {
            *bias += d;
        }
    }
}
