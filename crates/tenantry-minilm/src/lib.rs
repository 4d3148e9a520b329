//! An offline semantic `Embedder`: sentence-transformers' all-MiniLM-L6-v2 (BERT, 6 layers, 384
//! dimensions) run in pure Rust with candle, from files installed once by
//! `scripts/setup-minilm.sh` and never downloaded at run time. Loading checks the files'
//! SHA-256 against the pinned values, so a different or damaged model is refused rather than
//! producing vectors that silently disagree with those already stored.
//!
//! A text is tokenized (WordPiece, lowercased), cut at the model's 256-token window, run through
//! the encoder, mean-pooled over its real tokens and L2-normalised — the sentence-transformers
//! recipe. Its token count (what the ledger meters) is the number of word pieces before the cut,
//! without the two special tokens.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, anyhow};
use async_trait::async_trait;
use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::bert::{BertModel, Config};
use sha2::{Digest, Sha256};
use tokenizers::{PaddingParams, Tokenizer, TruncationParams};

use tenantry_app::{Embedded, Embedder};

/// The model name recorded with every vector and usage event.
pub const MODEL: &str = "sentence-transformers/all-MiniLM-L6-v2";
pub const DIMENSIONS: usize = 384;
/// The model's window (sentence-transformers' `max_seq_length`).
pub const MAX_TOKENS: usize = 256;
/// Texts per forward pass.
const BATCH: usize = 16;

/// The pinned files: name and SHA-256.
pub const FILES: [(&str, &str); 3] = [
    ("model.safetensors", "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"),
    ("tokenizer.json", "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037"),
    ("config.json", "953f9c0d463486b10a6871cc2fd59f223b2c70184f49815e7efbcab5d8908b41"),
];

struct Inner {
    model: BertModel,
    tokenizer: Tokenizer,
    counter: Tokenizer,
}

/// The embedder. Cheap to clone.
#[derive(Clone)]
pub struct MiniLm {
    inner: Arc<Inner>,
}

fn sha256_hex(path: &Path) -> anyhow::Result<String> {
    let bytes = std::fs::read(path).with_context(|| format!("read {}", path.display()))?;
    Ok(Sha256::digest(&bytes).iter().map(|b| format!("{b:02x}")).collect())
}

impl MiniLm {
    /// Loads the model from `dir` (as `scripts/setup-minilm.sh` lays it out), checking the pinned
    /// checksums.
    pub fn load(dir: &Path) -> anyhow::Result<Self> {
        let path = |name: &str| -> PathBuf { dir.join(name) };
        for (name, expected) in FILES {
            let p = path(name);
            if !p.is_file() {
                return Err(anyhow!(
                    "{} is missing: install the model with `bash scripts/setup-minilm.sh {}`",
                    p.display(),
                    dir.display()
                ));
            }
            let got = sha256_hex(&p)?;
            if got != expected {
                return Err(anyhow!(
                    "{} has SHA-256 {got}, not the pinned {expected}: reinstall it with scripts/setup-minilm.sh",
                    p.display()
                ));
            }
        }
        let config: Config = serde_json::from_str(&std::fs::read_to_string(path("config.json"))?)
            .context("config.json is not a BERT configuration")?;
        let device = Device::Cpu;
        // SAFETY: the file is mapped read-only and was just checked against its pinned hash; it is
        // not expected to change while the process runs (the setup script replaces it atomically).
        let vb = unsafe { VarBuilder::from_mmaped_safetensors(&[path("model.safetensors")], DType::F32, &device)? };
        let model = BertModel::load(vb, &config).context("load the BERT weights")?;
        let mut counter =
            Tokenizer::from_file(path("tokenizer.json")).map_err(|e| anyhow!("load tokenizer.json: {e}"))?;
        let mut tokenizer = counter.clone();
        // the file pads and cuts at 128; counting must see the whole text
        counter.with_padding(None);
        counter.with_truncation(None).map_err(|e| anyhow!("configure the counter: {e}"))?;
        tokenizer
            .with_truncation(Some(TruncationParams { max_length: MAX_TOKENS, ..Default::default() }))
            .map_err(|e| anyhow!("configure truncation: {e}"))?;
        tokenizer.with_padding(Some(PaddingParams::default()));
        Ok(Self { inner: Arc::new(Inner { model, tokenizer, counter }) })
    }

    /// Embeds `texts` on this thread (CPU-bound: call it from a blocking task).
    pub fn embed_blocking(&self, texts: &[&str]) -> anyhow::Result<Vec<Embedded>> {
        let mut out = Vec::with_capacity(texts.len());
        for batch in texts.chunks(BATCH) {
            let inputs: Vec<String> = batch.iter().map(|t| (*t).to_owned()).collect();
            let encodings = self.inner.tokenizer.encode_batch(inputs, true).map_err(|e| anyhow!("tokenize: {e}"))?;
            let rows = encodings.len();
            let width = encodings.first().map_or(0, |e| e.get_ids().len());
            let ids: Vec<u32> = encodings.iter().flat_map(|e| e.get_ids().to_vec()).collect();
            let mask: Vec<u32> = encodings.iter().flat_map(|e| e.get_attention_mask().to_vec()).collect();
            let device = &self.inner.model.device;
            let input_ids = Tensor::from_vec(ids, (rows, width), device)?;
            let attention = Tensor::from_vec(mask, (rows, width), device)?;
            let token_types = input_ids.zeros_like()?;
            let hidden = self.inner.model.forward(&input_ids, &token_types, Some(&attention))?;
            // mean over real tokens: sum(hidden × mask) / sum(mask)
            let mask = attention.to_dtype(DType::F32)?.unsqueeze(2)?;
            let summed = hidden.broadcast_mul(&mask)?.sum(1)?;
            let counts = mask.sum(1)?;
            let mean = summed.broadcast_div(&counts)?;
            let norms = mean.sqr()?.sum_keepdim(1)?.sqrt()?;
            let unit = mean.broadcast_div(&norms)?;
            let vectors: Vec<Vec<f32>> = unit.to_vec2()?;
            for (text, vector) in batch.iter().zip(vectors) {
                out.push(Embedded { vector, tokens: self.count_tokens(text)? });
            }
        }
        Ok(out)
    }

    /// Word pieces of `text`, without special tokens and without the window's cut.
    pub fn count_tokens(&self, text: &str) -> anyhow::Result<u32> {
        let e = self.inner.counter.encode(text, false).map_err(|e| anyhow!("tokenize: {e}"))?;
        Ok(e.get_ids().len() as u32)
    }
}

#[async_trait]
impl Embedder for MiniLm {
    fn model(&self) -> &str {
        MODEL
    }

    fn dimensions(&self) -> usize {
        DIMENSIONS
    }

    async fn embed(&self, texts: &[&str]) -> Result<Vec<Embedded>, anyhow::Error> {
        let this = self.clone();
        let owned: Vec<String> = texts.iter().map(|t| (*t).to_owned()).collect();
        tokio::task::spawn_blocking(move || {
            let refs: Vec<&str> = owned.iter().map(String::as_str).collect();
            this.embed_blocking(&refs)
        })
        .await
        .map_err(|e| anyhow!("the embedding task failed: {e}"))?
    }
}
