//! The classifier: transformer blocks over a short token sequence, then an MLP head.
//!
//! The sequence is `[fused, text layer 1..Lt, image layer 1..Li]`, each token tagged with a
//! learned slot embedding (which stream and which encoder layer it is). The fused token
//! plays the part of BERT's [CLS]: the head reads its output only. We attend over the
//! individual layer tokens rather than over three pooled vectors so that the classifier can
//! go back to a particular encoder depth when the fused vector is not enough, and so that
//! the learned weighting of layers lives in one place (fusion itself just averages).
//!
//! Image tokens of samples without an image are masked as keys in every block, so they
//! never reach the fused token.

use candle_core::{Module, Result, Tensor};
use candle_nn::{Init, VarBuilder};

use super::layers::{linear, AttentionBlock, Dropout, Linear};
use crate::encoders::ops::as_compute;

#[derive(Debug, Clone)]
pub struct Classifier {
    /// `(1 + Lt + Li, F)`; absent without blocks, where the head reads the fused vector alone.
    slot_embedding: Option<Tensor>,
    blocks: Vec<AttentionBlock>,
    hidden: Linear,
    output: Linear,
    dropout: Dropout,
    text_layers: usize,
    image_layers: usize,
}

/// The streams the classifier sees for one batch: `(B, L, F)` layer tokens.
pub struct ClassifierInput<'a> {
    pub fused: &'a Tensor,
    pub text: Option<&'a Tensor>,
    pub image: Option<&'a Tensor>,
    /// `(B,)` 1 where the sample has an image.
    pub image_mask: Option<&'a Tensor>,
}

impl Classifier {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        dim: usize,
        heads: usize,
        blocks: usize,
        text_layers: usize,
        image_layers: usize,
        num_labels: usize,
        dropout: Dropout,
        vb: VarBuilder,
    ) -> Result<Self> {
        let slots = 1 + text_layers + image_layers;
        let slot_embedding = if blocks > 0 {
            let init = Init::Randn { mean: 0.0, stdev: 0.02 };
            Some(vb.get_with_hints((slots, dim), "slot_embedding", init)?)
        } else {
            None
        };
        let blocks = (0..blocks)
            .map(|b| AttentionBlock::new(dim, heads, dropout.clone(), vb.pp(format!("block{b}"))))
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            slot_embedding,
            blocks,
            hidden: linear(dim, dim, vb.pp("head_hidden"))?,
            output: linear(dim, num_labels, vb.pp("head_output"))?,
            dropout,
            text_layers,
            image_layers,
        })
    }

    /// Returns `(B, labels)` logits.
    pub fn forward(&self, input: &ClassifierInput, train: bool) -> Result<Tensor> {
        let summary = match &self.slot_embedding {
            Some(slot_embedding) => self.attend(slot_embedding, input, train)?,
            None => input.fused.clone(),
        };
        let hidden = self.dropout.forward(
            &crate::encoders::fast_gelu::gelu_erf(&self.hidden.forward(&summary)?)?,
            train,
        )?;
        self.output.forward(&hidden)
    }

    /// Runs the blocks over `[fused, text layers, image layers]`; returns the fused token.
    fn attend(
        &self,
        slot_embedding: &Tensor,
        input: &ClassifierInput,
        train: bool,
    ) -> Result<Tensor> {
        let fused = input.fused;
        let batch = fused.dim(0)?;
        let mut tokens = vec![fused.unsqueeze(1)?];
        let mut key_mask = vec![Tensor::ones((batch, 1), fused.dtype(), fused.device())?];
        if let Some(text) = input.text {
            self.check_layers("text", text, self.text_layers)?;
            tokens.push(text.clone());
            key_mask.push(Tensor::ones((batch, self.text_layers), fused.dtype(), fused.device())?);
        }
        if let Some(image) = input.image {
            self.check_layers("image", image, self.image_layers)?;
            tokens.push(image.clone());
            let present = match input.image_mask {
                Some(mask) => mask.unsqueeze(1)?.repeat((1, self.image_layers))?,
                None => Tensor::ones((batch, self.image_layers), fused.dtype(), fused.device())?,
            };
            key_mask.push(present);
        }
        let mut x = Tensor::cat(&tokens, 1)?;
        let key_mask = Tensor::cat(&key_mask, 1)?;
        x = x.broadcast_add(&as_compute(&slot_embedding.narrow(0, 0, x.dim(1)?)?, &x)?)?;
        for block in &self.blocks {
            x = block.forward(&x, &x, Some(&key_mask), None, train)?;
        }
        x.narrow(1, 0, 1)?.squeeze(1)
    }

    fn check_layers(&self, stream: &str, tokens: &Tensor, expected: usize) -> Result<()> {
        let layers = tokens.dim(1)?;
        if layers != expected {
            candle_core::bail!(
                "the classifier was built for {expected} {stream} layer tokens, got {layers}"
            );
        }
        Ok(())
    }
}
