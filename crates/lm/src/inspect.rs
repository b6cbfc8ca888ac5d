//! What a language model is made of (`llmctl inspect`): the embedding table and dense layers with their shapes
//! and weight statistics, and what each layer outputs for a prompt.

use alloc::vec::Vec;

use sis_ai::{LayerInfo, LayerKind};

use crate::model::{padded, Model, Scratch};

impl Model {
    /// The embedding table (vocabulary × embedding width, no biases), then each dense layer: ReLU, the last
    /// (the logits) linear.
    pub fn layers(&self) -> Vec<LayerInfo> {
        let architecture = self.architecture();
        let embedding = LayerInfo::new(
            LayerKind::Embedding,
            architecture.vocabulary.len(),
            architecture.embedding,
            self.embeddings.iter().copied(),
            core::iter::empty(),
        );
        let last = self.layers.len() - 1;
        let dense = self.layers.iter().enumerate().map(|(index, layer)| {
            let kind = if index == last { LayerKind::DenseLinear } else { LayerKind::DenseRelu };
            let weights =
                (0..layer.outputs).flat_map(move |o| (0..layer.inputs).map(move |i| layer.weights[layer.index(o, i)]));
            LayerInfo::new(kind, layer.inputs, layer.outputs, weights, layer.biases[..layer.outputs].iter().copied())
        });
        core::iter::once(embedding).chain(dense).collect()
    }

    /// What each layer outputs for the byte after `prompt`, with the installed vector unit: the context's
    /// embeddings laid end to end (the first dense layer's input), then each dense layer's output, the last
    /// being the logits [`Model::next_logits`] gives.
    pub fn activations(&self, prompt: &[u8]) -> Vec<Vec<f32>> {
        let mut scratch = Scratch::default();
        self.logits(sis_ai::vector_unit(), &self.context_after(prompt), &mut scratch);
        let mut activations = Vec::with_capacity(self.layers.len() + 1);
        activations.push(scratch.input.clone());
        for (layer, output) in self.layers.iter().zip(&scratch.outputs) {
            debug_assert_eq!(output.len(), padded(layer.outputs));
            activations.push(output[..layer.outputs].to_vec());
        }
        activations
    }
}
