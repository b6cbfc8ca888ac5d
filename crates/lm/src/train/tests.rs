//! The training loops against the vector unit and against finite differences.

use sis_ai::SOFTWARE;
use sis_hal::SeededRandom;

use super::*;

/// Random layers of awkward sizes over 1 to 9 rows: the batched forward gives the vector unit's bits.
#[test]
fn the_batched_forward_pass_is_the_vector_units_bit_for_bit() {
    let mut random = SeededRandom::new(21);
    for case in 0..200 {
        let (inputs, outputs, rows) =
            (1 + random.below(20) as usize, 1 + random.below(20) as usize, 1 + random.below(9) as usize);
        let mut layer = Dense::zeros(inputs, outputs);
        for o in 0..outputs {
            for i in 0..inputs {
                let index = layer.index(o, i);
                layer.weights[index] = random.between(-2.0, 2.0);
            }
            layer.biases[o] = random.between(-1.0, 1.0);
        }
        // Rows `stride` apart, the values between them never read.
        let stride = inputs + random.below(3) as usize;
        let input: Vec<f32> = (0..rows * stride).map(|_| random.between(-3.0, 3.0)).collect();
        let activate = case % 2 == 0;
        let width = padded(outputs);
        let mut batched = vec![f32::NAN; rows * width];
        kernels::forward(&layer, &input, stride, rows, &mut batched, activate);
        for row in 0..rows {
            let mut single = vec![f32::NAN; width];
            (SOFTWARE.forward)(&layer.weights, &layer.biases, &input[row * stride..][..inputs], &mut single, activate);
            let bits = |values: &[f32]| values.iter().map(|value| value.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&batched[row * width..][..width]), bits(&single), "case {case}, row {row}");
        }
    }
}

/// The held-out loss is measured with the batched forward; it must be the model's own logits.
#[test]
fn the_held_out_positions_get_the_models_logits() {
    let text = &crate::tests::TEXT[..4000];
    let config = TrainConfig {
        context: 5,
        embedding: 3,
        hidden: vec![13, 6],
        epochs: 1,
        batch: 7,
        learning_rate: 0.01,
        seed: 4,
    };
    let mut trainer = Trainer::new(text, config).unwrap();
    trainer.epoch();
    let positions: Vec<u32> = (3600..3607).collect();
    trainer.batch.forward(&trainer.model, &trainer.padded, &positions);
    let vocabulary = trainer.model.vocabulary_size();
    let width = padded(vocabulary);
    for (row, &position) in positions.iter().enumerate() {
        let prompt = &text[..position as usize];
        let batched = &trainer.batch.outputs[2][row * width..][..vocabulary];
        assert_eq!(batched, &trainer.model.next_logits(prompt)[..], "position {position}");
    }
}

/// Every parameter in the order of [`Model::parameters`], from buffers shaped like the model.
fn flatten(embeddings: &[f32], layers: &[Dense]) -> Vec<f32> {
    let mut values = embeddings.to_vec();
    for layer in layers {
        for o in 0..layer.outputs {
            values.extend((0..layer.inputs).map(|i| layer.weights[layer.index(o, i)]));
        }
        values.extend_from_slice(&layer.biases[..layer.outputs]);
    }
    values
}

/// Mean cross-entropy (nats) of `positions` under `model`, from its own logits.
fn mean_loss(model: &Model, text: &[u8], positions: &[u32]) -> f64 {
    let total: f64 = positions
        .iter()
        .map(|&position| {
            let logits = model.next_logits(&text[..position as usize]);
            negative_log_softmax(&logits, model.token(text[position as usize]).unwrap() as usize)
        })
        .sum();
    total / positions.len() as f64
}

#[test]
fn backpropagation_matches_finite_differences() {
    let text = b"the cat sat on the mat, the hat sat on the cat.\nthe end, at last.\n".repeat(2);
    let config =
        TrainConfig { context: 3, embedding: 4, hidden: vec![9, 6], epochs: 1, batch: 5, learning_rate: 0.01, seed: 8 };
    let mut trainer = Trainer::new(&text, config).unwrap();
    let positions = [0u32, 17, 40, 41, 90];
    // One step's gradients, without the update.
    trainer.batch.forward(&trainer.model, &trainer.padded, &positions);
    let (vocabulary, last) = (trainer.model.vocabulary_size(), trainer.model.layers.len() - 1);
    let width = padded(vocabulary);
    for (row, &position) in positions.iter().enumerate() {
        let target = trainer.padded[position as usize + 3] as usize;
        let logits = &trainer.batch.outputs[last][row * width..][..vocabulary];
        let delta = &mut trainer.batch.deltas[last][row * width..][..width];
        softmax_cross_entropy(logits, target, 1.0 / positions.len() as f32, delta);
    }
    trainer.backward(&positions);
    let analytic = flatten(&trainer.gradient.embeddings, &trainer.gradient.layers);
    let parameters = trainer.model.parameters();
    assert_eq!(analytic.len(), parameters.len());
    let architecture = trainer.model.architecture().clone();
    let step = 1e-3f32;
    let mut checked = 0;
    for (index, &expected) in analytic.iter().enumerate() {
        let mut shifted = parameters.clone();
        shifted[index] = parameters[index] + step;
        let up = mean_loss(&Model::from_parameters(architecture.clone(), &shifted).unwrap(), &text, &positions);
        shifted[index] = parameters[index] - step;
        let down = mean_loss(&Model::from_parameters(architecture.clone(), &shifted).unwrap(), &text, &positions);
        let numeric = (up - down) / (2.0 * f64::from(step));
        let difference = (numeric - f64::from(expected)).abs();
        assert!(difference <= 2e-3 + 2e-2 * numeric.abs(), "parameter {index}: numeric {numeric}, analytic {expected}");
        checked += 1;
    }
    // Vocabulary of 15 bytes: embeddings 15·4, layers 12·9 + 9, 9·6 + 6, 6·15 + 15.
    assert_eq!(checked, 60 + 117 + 60 + 105);
}
