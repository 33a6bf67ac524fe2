//! A BERT encoder for inference on the CPU: the model of `config.json` with the weights of
//! `model.safetensors`, run on faer's matrix products and this module's element-wise kernels.
//!
//! Inputs are packed, not padded: the tokens of every input in a pass are rows of one
//! matrix, so the dense layers cost what the real tokens cost, and attention runs input by
//! input over its own rows only. A padded batch (what candle and torch compute) spends its
//! padding rows on work that masking then throws away.
//!
//! Each layer fuses what it can: the query, key and value projections are one product; the
//! bias and the residual are written into the output before the product is added to them;
//! the softmax scale rides on the score product; every element-wise pass is one loop.

mod kernels;

use faer::linalg::matmul::matmul;
use faer::{Accum, MatMut, MatRef, Par};
use safetensors::{Dtype, SafeTensors};
use serde::Deserialize;

/// The parts of a Hugging Face BERT `config.json` the encoder uses.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct BertConfig {
    /// `bert` when present; RoBERTa-style models share the weight names but number positions
    /// from the padding id onwards, so they would load and give wrong vectors.
    #[serde(default)]
    pub model_type: Option<String>,
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub intermediate_size: usize,
    #[serde(default = "default_hidden_act")]
    pub hidden_act: String,
    pub max_position_embeddings: usize,
    #[serde(default = "default_type_vocab_size")]
    pub type_vocab_size: usize,
    #[serde(default = "default_layer_norm_eps")]
    pub layer_norm_eps: f64,
    #[serde(default = "default_position_embedding_type")]
    pub position_embedding_type: String,
}

fn default_hidden_act() -> String {
    "gelu".to_owned()
}
fn default_type_vocab_size() -> usize {
    2
}
fn default_layer_norm_eps() -> f64 {
    1e-12
}
fn default_position_embedding_type() -> String {
    "absolute".to_owned()
}

/// The feed-forward activation, by its Hugging Face name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Activation {
    /// `gelu`: the exact one, with erf.
    GeluErf,
    /// `gelu_new`, `gelu_pytorch_tanh`, `gelu_fast`, `gelu_approximate`: the tanh form.
    GeluTanh,
    Relu,
}

impl Activation {
    fn from_name(name: &str) -> Option<Self> {
        match name {
            "gelu" => Some(Self::GeluErf),
            "gelu_new" | "gelu_pytorch_tanh" | "gelu_fast" | "gelu_approximate" => {
                Some(Self::GeluTanh)
            }
            "relu" => Some(Self::Relu),
            _ => None,
        }
    }

    fn apply(self, values: &mut [f32]) {
        match self {
            Self::GeluErf => kernels::gelu_erf(values),
            Self::GeluTanh => kernels::gelu_tanh(values),
            Self::Relu => kernels::relu(values),
        }
    }
}

/// Why `config.json` and `model.safetensors` do not describe a BERT encoder kb can run.
#[derive(Debug, thiserror::Error)]
pub enum BertError {
    #[error("config.json: {0}")]
    Config(String),
    #[error("weights file is not a safetensors file")]
    Format(#[from] safetensors::SafeTensorError),
    #[error("weight {name} is missing")]
    Missing { name: String },
    #[error("weight {name} has shape {found:?}; config.json implies {expected:?}")]
    Shape {
        name: String,
        found: Vec<usize>,
        expected: Vec<usize>,
    },
    #[error("weight {name} is stored as {dtype:?}; only F32, F16 and BF16 are supported")]
    Dtype { name: String, dtype: Dtype },
    /// An input the model cannot take: the tokenizer does not match the weights.
    #[error("input {input}: {problem}")]
    Input { input: usize, problem: String },
}

struct LayerNorm {
    gamma: Vec<f32>,
    beta: Vec<f32>,
}

/// A dense layer: `weight` is `outputs × inputs`, row-major, as torch stores it.
struct Linear {
    weight: Vec<f32>,
    bias: Vec<f32>,
    inputs: usize,
}

impl Linear {
    fn outputs(&self) -> usize {
        self.bias.len()
    }

    /// `out += x · weightᵀ` for `rows` rows of `x`.
    fn add_product(&self, out: &mut [f32], x: &[f32], rows: usize, par: Par) {
        matmul(
            MatMut::from_row_major_slice_mut(out, rows, self.outputs()),
            Accum::Add,
            MatRef::from_row_major_slice(x, rows, self.inputs),
            MatRef::from_row_major_slice(&self.weight, self.outputs(), self.inputs).transpose(),
            1.0,
            par,
        );
    }
}

struct Layer {
    /// Query, key and value projections stacked: `3·hidden` outputs.
    qkv: Linear,
    attention_out: Linear,
    attention_norm: LayerNorm,
    intermediate: Linear,
    output: Linear,
    output_norm: LayerNorm,
}

/// The token vectors of one pass: `rows × hidden`, input after input; input `i` owns rows
/// `starts[i]..starts[i + 1]`.
pub(crate) struct Hidden {
    pub states: Vec<f32>,
    pub starts: Vec<usize>,
    pub width: usize,
}

impl Hidden {
    /// The token vectors of input `i`.
    pub fn rows(&self, i: usize) -> impl ExactSizeIterator<Item = &[f32]> {
        self.states[self.starts[i] * self.width..self.starts[i + 1] * self.width]
            .chunks_exact(self.width)
    }
}

/// A BERT encoder with its weights in memory as `f32`.
pub(crate) struct Bert {
    hidden: usize,
    heads: usize,
    max_positions: usize,
    type_vocab_size: usize,
    vocab_size: usize,
    eps: f32,
    activation: Activation,
    word_embeddings: Vec<f32>,
    position_embeddings: Vec<f32>,
    token_type_embeddings: Vec<f32>,
    embedding_norm: LayerNorm,
    layers: Vec<Layer>,
}

impl Bert {
    /// Build the encoder `config` describes from a safetensors file's bytes.
    ///
    /// Weight names may carry the `bert.` prefix of `BertFor*` checkpoints, and layer norms
    /// may be named `gamma`/`beta` as in checkpoints converted from TensorFlow.
    pub fn load(config: &BertConfig, safetensors: &[u8]) -> Result<Self, BertError> {
        let activation = Activation::from_name(&config.hidden_act).ok_or_else(|| {
            BertError::Config(format!(
                "hidden_act {:?} is not supported (gelu, gelu_new, gelu_pytorch_tanh, relu are)",
                config.hidden_act
            ))
        })?;
        if let Some(kind) = config.model_type.as_deref().filter(|&kind| kind != "bert") {
            return Err(BertError::Config(format!(
                "model_type {kind:?} is not supported (only bert is)"
            )));
        }
        if config.position_embedding_type != "absolute" {
            return Err(BertError::Config(format!(
                "position_embedding_type {:?} is not supported (only absolute is)",
                config.position_embedding_type
            )));
        }
        let (hidden, heads) = (config.hidden_size, config.num_attention_heads);
        if hidden == 0 || heads == 0 || hidden % heads != 0 {
            return Err(BertError::Config(format!(
                "hidden_size {hidden} is not a positive multiple of num_attention_heads {heads}"
            )));
        }
        let weights = Weights::new(SafeTensors::deserialize(safetensors)?);
        let norm = |prefix: &str| -> Result<LayerNorm, BertError> {
            Ok(LayerNorm {
                gamma: weights.get(&format!("{prefix}.LayerNorm.weight"), &[hidden])?,
                beta: weights.get(&format!("{prefix}.LayerNorm.bias"), &[hidden])?,
            })
        };
        let linear = |names: &[String], outputs: usize, inputs: usize| {
            let mut weight = Vec::with_capacity(names.len() * outputs * inputs);
            let mut bias = Vec::with_capacity(names.len() * outputs);
            for name in names {
                weight.extend(weights.get(&format!("{name}.weight"), &[outputs, inputs])?);
                bias.extend(weights.get(&format!("{name}.bias"), &[outputs])?);
            }
            Ok::<_, BertError>(Linear {
                weight,
                bias,
                inputs,
            })
        };
        let intermediate = config.intermediate_size;
        let layers = (0..config.num_hidden_layers)
            .map(|i| {
                let at = format!("encoder.layer.{i}");
                let qkv = ["query", "key", "value"].map(|p| format!("{at}.attention.self.{p}"));
                Ok(Layer {
                    qkv: linear(&qkv, hidden, hidden)?,
                    attention_out: linear(
                        &[format!("{at}.attention.output.dense")],
                        hidden,
                        hidden,
                    )?,
                    attention_norm: norm(&format!("{at}.attention.output"))?,
                    intermediate: linear(
                        &[format!("{at}.intermediate.dense")],
                        intermediate,
                        hidden,
                    )?,
                    output: linear(&[format!("{at}.output.dense")], hidden, intermediate)?,
                    output_norm: norm(&format!("{at}.output"))?,
                })
            })
            .collect::<Result<Vec<_>, BertError>>()?;
        Ok(Self {
            hidden,
            heads,
            max_positions: config.max_position_embeddings,
            type_vocab_size: config.type_vocab_size,
            vocab_size: config.vocab_size,
            eps: config.layer_norm_eps as f32,
            activation,
            word_embeddings: weights.get(
                "embeddings.word_embeddings.weight",
                &[config.vocab_size, hidden],
            )?,
            position_embeddings: weights.get(
                "embeddings.position_embeddings.weight",
                &[config.max_position_embeddings, hidden],
            )?,
            token_type_embeddings: weights.get(
                "embeddings.token_type_embeddings.weight",
                &[config.type_vocab_size, hidden],
            )?,
            embedding_norm: norm("embeddings")?,
            layers,
        })
    }

    pub fn hidden_size(&self) -> usize {
        self.hidden
    }

    pub fn vocab_size(&self) -> usize {
        self.vocab_size
    }

    /// Encode inputs given as `(token ids, token type ids)`: the last layer's token vectors.
    ///
    /// `par` parallelises the matrix products of the dense layers; attention runs on the
    /// calling thread. Fails, before any work, on a token id outside the vocabulary, a type id
    /// outside the type vocabulary, an input longer than the position table, or ids and type
    /// ids of different lengths.
    pub fn encode(&self, inputs: &[(&[u32], &[u32])], par: Par) -> Result<Hidden, BertError> {
        let h = self.hidden;
        let mut starts = Vec::with_capacity(inputs.len() + 1);
        starts.push(0);
        for (input, (ids, type_ids)) in inputs.iter().enumerate() {
            self.check(ids, type_ids)
                .map_err(|problem| BertError::Input { input, problem })?;
            starts.push(starts.last().copied().unwrap_or(0) + ids.len());
        }
        let rows = starts.last().copied().unwrap_or(0);

        let mut x = vec![0.0f32; rows * h];
        for (i, (ids, type_ids)) in inputs.iter().enumerate() {
            let out = &mut x[starts[i] * h..starts[i + 1] * h];
            for (position, ((&id, &type_id), row)) in ids
                .iter()
                .zip(type_ids.iter())
                .zip(out.chunks_exact_mut(h))
                .enumerate()
            {
                let word = &self.word_embeddings[id as usize * h..][..h];
                let place = &self.position_embeddings[position * h..][..h];
                let kind = &self.token_type_embeddings[type_id as usize * h..][..h];
                for (((v, w), p), k) in row.iter_mut().zip(word).zip(place).zip(kind) {
                    *v = w + p + k;
                }
            }
        }
        kernels::layer_norm_rows(
            &mut x,
            &self.embedding_norm.gamma,
            &self.embedding_norm.beta,
            self.eps,
        );

        let longest = starts.windows(2).map(|w| w[1] - w[0]).max().unwrap_or(0);
        let mut buffers = Buffers {
            qkv: vec![0.0; rows * 3 * h],
            context: vec![0.0; rows * h],
            attended: vec![0.0; rows * h],
            intermediate: vec![
                0.0;
                rows * self.layers.first().map_or(0, |l| l.intermediate.outputs())
            ],
            scores: vec![0.0; longest * longest],
        };
        for layer in &self.layers {
            self.layer(layer, &mut x, &starts, &mut buffers, par);
        }
        Ok(Hidden {
            states: x,
            starts,
            width: h,
        })
    }

    /// Why the model cannot take an input, if it cannot.
    fn check(&self, ids: &[u32], type_ids: &[u32]) -> Result<(), String> {
        if ids.len() != type_ids.len() {
            return Err(format!(
                "{} token ids but {} type ids",
                ids.len(),
                type_ids.len()
            ));
        }
        if ids.len() > self.max_positions {
            return Err(format!(
                "{} tokens; the model takes at most {}",
                ids.len(),
                self.max_positions
            ));
        }
        if let Some(id) = ids.iter().find(|&&id| id as usize >= self.vocab_size) {
            return Err(format!(
                "token id {id} is outside the model's vocabulary of {}",
                self.vocab_size
            ));
        }
        if let Some(id) = type_ids
            .iter()
            .find(|&&id| id as usize >= self.type_vocab_size)
        {
            return Err(format!(
                "token type {id} is outside the model's {} types",
                self.type_vocab_size
            ));
        }
        Ok(())
    }

    /// One encoder layer over `x`, in place.
    fn layer(&self, layer: &Layer, x: &mut [f32], starts: &[usize], b: &mut Buffers, par: Par) {
        let h = self.hidden;
        let rows = x.len() / h;

        kernels::fill_rows(&mut b.qkv, &layer.qkv.bias);
        layer.qkv.add_product(&mut b.qkv, x, rows, par);
        self.attention(&b.qkv, &mut b.context, &mut b.scores, starts);

        // Residual and bias first, then the projection added to them.
        kernels::sum_rows(&mut b.attended, x, &layer.attention_out.bias);
        layer
            .attention_out
            .add_product(&mut b.attended, &b.context, rows, par);
        let norm = &layer.attention_norm;
        kernels::layer_norm_rows(&mut b.attended, &norm.gamma, &norm.beta, self.eps);

        kernels::fill_rows(&mut b.intermediate, &layer.intermediate.bias);
        layer
            .intermediate
            .add_product(&mut b.intermediate, &b.attended, rows, par);
        self.activation.apply(&mut b.intermediate);

        kernels::sum_rows(x, &b.attended, &layer.output.bias);
        layer.output.add_product(x, &b.intermediate, rows, par);
        let norm = &layer.output_norm;
        kernels::layer_norm_rows(x, &norm.gamma, &norm.beta, self.eps);
    }

    /// Scaled dot-product attention, input by input and head by head, from the stacked
    /// query/key/value rows into `context`.
    fn attention(&self, qkv: &[f32], context: &mut [f32], scores: &mut [f32], starts: &[usize]) {
        let h = self.hidden;
        let d = h / self.heads;
        let scale = 1.0 / (d as f32).sqrt();
        for span in starts.windows(2) {
            let (start, len) = (span[0], span[1] - span[0]);
            if len == 0 {
                continue;
            }
            let scores = &mut scores[..len * len];
            for head in 0..self.heads {
                let column = |part: usize| &qkv[start * 3 * h + part * h + head * d..];
                let query = MatRef::from_row_major_slice_with_stride(column(0), len, d, 3 * h);
                let key = MatRef::from_row_major_slice_with_stride(column(1), len, d, 3 * h);
                let value = MatRef::from_row_major_slice_with_stride(column(2), len, d, 3 * h);
                matmul(
                    MatMut::from_row_major_slice_mut(scores, len, len),
                    Accum::Replace,
                    query,
                    key.transpose(),
                    scale,
                    Par::Seq,
                );
                kernels::softmax_rows(scores, len);
                // faer 0.23's `from_row_major_slice_with_stride_mut` builds a column-major
                // view (its strides are swapped); the transpose of a column-major view is the
                // row-major view meant here, and is what its `MatRef` twin does.
                let context = MatMut::from_column_major_slice_with_stride_mut(
                    &mut context[start * h + head * d..],
                    d,
                    len,
                    h,
                )
                .transpose_mut();
                matmul(
                    context,
                    Accum::Replace,
                    MatRef::from_row_major_slice(scores, len, len),
                    value,
                    1.0,
                    Par::Seq,
                );
            }
        }
    }
}

/// Scratch space of one pass, reused layer after layer.
struct Buffers {
    qkv: Vec<f32>,
    context: Vec<f32>,
    attended: Vec<f32>,
    intermediate: Vec<f32>,
    scores: Vec<f32>,
}

/// Weights by name, converted to `f32`.
struct Weights<'a> {
    tensors: SafeTensors<'a>,
    /// Whether names carry the `bert.` prefix of `BertFor*` checkpoints.
    prefixed: bool,
}

impl<'a> Weights<'a> {
    fn new(tensors: SafeTensors<'a>) -> Self {
        let names = tensors.names();
        let has = |name: &str| names.contains(&name);
        let prefixed = !has("embeddings.word_embeddings.weight")
            && has("bert.embeddings.word_embeddings.weight");
        Self { tensors, prefixed }
    }

    fn get(&self, name: &str, shape: &[usize]) -> Result<Vec<f32>, BertError> {
        let view = stored_names(name, self.prefixed)
            .into_iter()
            .find_map(|stored| self.tensors.tensor(&stored).ok())
            .ok_or_else(|| BertError::Missing {
                name: name.to_owned(),
            })?;
        if view.shape() != shape {
            return Err(BertError::Shape {
                name: name.to_owned(),
                found: view.shape().to_vec(),
                expected: shape.to_vec(),
            });
        }
        let bytes = view.data();
        let values = match view.dtype() {
            Dtype::F32 => bytes
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect(),
            Dtype::F16 => bytes
                .chunks_exact(2)
                .map(|b| half::f16::from_le_bytes([b[0], b[1]]).to_f32())
                .collect(),
            Dtype::BF16 => bytes
                .chunks_exact(2)
                .map(|b| half::bf16::from_le_bytes([b[0], b[1]]).to_f32())
                .collect(),
            dtype => {
                return Err(BertError::Dtype {
                    name: name.to_owned(),
                    dtype,
                });
            }
        };
        Ok(values)
    }
}

/// The names under which a checkpoint may store weight `name`: with the `bert.` prefix when
/// it uses one, and with TensorFlow's `gamma`/`beta` for a layer norm's `weight`/`bias`.
fn stored_names(name: &str, prefixed: bool) -> Vec<String> {
    let prefix = if prefixed { "bert." } else { "" };
    let tensorflow = name
        .strip_suffix("LayerNorm.weight")
        .map(|stem| format!("{stem}LayerNorm.gamma"))
        .or_else(|| {
            name.strip_suffix("LayerNorm.bias")
                .map(|stem| format!("{stem}LayerNorm.beta"))
        });
    std::iter::once(name.to_owned())
        .chain(tensorflow)
        .map(|stored| format!("{prefix}{stored}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weights_are_found_with_the_bert_prefix_and_tensorflow_layer_norm_names() {
        assert_eq!(
            stored_names("embeddings.word_embeddings.weight", true),
            ["bert.embeddings.word_embeddings.weight"]
        );
        assert_eq!(
            stored_names("encoder.layer.0.output.LayerNorm.bias", false),
            [
                "encoder.layer.0.output.LayerNorm.bias",
                "encoder.layer.0.output.LayerNorm.beta"
            ]
        );
        assert_eq!(
            stored_names("embeddings.LayerNorm.weight", true),
            [
                "bert.embeddings.LayerNorm.weight",
                "bert.embeddings.LayerNorm.gamma"
            ]
        );
    }

    use safetensors::tensor::TensorView;

    /// A two-layer BERT small enough to write out in a test: 8 dimensions, 2 heads.
    fn tiny_config() -> BertConfig {
        serde_json::from_value(serde_json::json!({
            "vocab_size": 11,
            "hidden_size": 8,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
            "intermediate_size": 16,
            "max_position_embeddings": 16,
        }))
        .unwrap()
    }

    /// Every weight of [`tiny_config`], by name, with its shape and values.
    fn tiny_weights(config: &BertConfig) -> Vec<(String, Vec<usize>, Vec<f32>)> {
        let (h, i) = (config.hidden_size, config.intermediate_size);
        let mut shapes = vec![
            (
                "embeddings.word_embeddings.weight".to_owned(),
                vec![config.vocab_size, h],
            ),
            (
                "embeddings.position_embeddings.weight".to_owned(),
                vec![16, h],
            ),
            (
                "embeddings.token_type_embeddings.weight".to_owned(),
                vec![2, h],
            ),
            ("embeddings.LayerNorm.weight".to_owned(), vec![h]),
            ("embeddings.LayerNorm.bias".to_owned(), vec![h]),
        ];
        for layer in 0..config.num_hidden_layers {
            let at = format!("encoder.layer.{layer}");
            for (name, shape) in [
                ("attention.self.query", vec![h, h]),
                ("attention.self.key", vec![h, h]),
                ("attention.self.value", vec![h, h]),
                ("attention.output.dense", vec![h, h]),
                ("intermediate.dense", vec![i, h]),
                ("output.dense", vec![h, i]),
            ] {
                shapes.push((format!("{at}.{name}.bias"), vec![shape[0]]));
                shapes.push((format!("{at}.{name}.weight"), shape));
            }
            for norm in ["attention.output", "output"] {
                shapes.push((format!("{at}.{norm}.LayerNorm.weight"), vec![h]));
                shapes.push((format!("{at}.{norm}.LayerNorm.bias"), vec![h]));
            }
        }
        // Values that f16 holds exactly, so that every storage type gives the same model.
        let mut state = 7u32;
        shapes
            .into_iter()
            .map(|(name, shape)| {
                let values = (0..shape.iter().product::<usize>())
                    .map(|_| {
                        state = state.wrapping_mul(1_103_515_245).wrapping_add(12_345);
                        ((state >> 16) % 256) as f32 / 256.0 - 0.5
                    })
                    .collect();
                (name, shape, values)
            })
            .collect()
    }

    fn safetensors_file(
        weights: &[(String, Vec<usize>, Vec<f32>)],
        dtype: Dtype,
        rename: impl Fn(&str) -> String,
    ) -> Vec<u8> {
        let bytes: Vec<(String, Vec<usize>, Vec<u8>)> = weights
            .iter()
            .map(|(name, shape, values)| {
                let data = match dtype {
                    Dtype::F32 => values.iter().flat_map(|v| v.to_le_bytes()).collect(),
                    Dtype::F16 => values
                        .iter()
                        .flat_map(|&v| half::f16::from_f32(v).to_le_bytes())
                        .collect(),
                    _ => unreachable!("the tests write F32 and F16"),
                };
                (rename(name), shape.clone(), data)
            })
            .collect();
        let views = bytes.iter().map(|(name, shape, data)| {
            (
                name.clone(),
                TensorView::new(dtype, shape.clone(), data).unwrap(),
            )
        });
        safetensors::serialize(views, None).unwrap()
    }

    /// [`tiny_config`] with [`tiny_weights`], stored as F32.
    fn tiny_model() -> Bert {
        let config = tiny_config();
        let file = safetensors_file(&tiny_weights(&config), Dtype::F32, str::to_owned);
        Bert::load(&config, &file).unwrap()
    }

    fn encode_alone(model: &Bert, ids: &[u32]) -> Vec<f32> {
        let types = vec![0; ids.len()];
        model.encode(&[(ids, &types)], Par::Seq).unwrap().states
    }

    #[test]
    fn packed_inputs_encode_exactly_as_each_does_alone() {
        let model = tiny_model();
        let inputs: [&[u32]; 3] = [&[1, 5, 9, 2], &[1, 2], &[1, 3, 3, 7, 10, 4, 6, 2]];
        let types = [0u32; 8];
        let packed: Vec<(&[u32], &[u32])> = inputs
            .iter()
            .map(|ids| (*ids, &types[..ids.len()]))
            .collect();

        let hidden = model.encode(&packed, Par::Seq).unwrap();

        assert_eq!(hidden.starts, [0, 4, 6, 14]);
        for (i, ids) in inputs.iter().enumerate() {
            let together: Vec<f32> = hidden.rows(i).flatten().copied().collect();
            let alone = encode_alone(&model, ids);
            assert_eq!(together.len(), ids.len() * 8);
            for (a, b) in together.iter().zip(&alone) {
                assert!((a - b).abs() < 1e-6, "input {i}: {a} packed, {b} alone");
            }
        }
        // A token's vector depends on its neighbours: attention really mixes positions.
        assert_ne!(
            encode_alone(&model, &[1, 5])[..8],
            encode_alone(&model, &[1, 6])[..8]
        );
    }

    #[test]
    fn inputs_the_model_cannot_take_are_refused_with_the_reason() {
        let model = tiny_model();
        let problem = |ids: &[u32], types: &[u32]| {
            let inputs: [(&[u32], &[u32]); 2] = [(&[1, 2], &[0, 0]), (ids, types)];
            match model.encode(&inputs, Par::Seq) {
                Err(BertError::Input { input: 1, problem }) => problem,
                other => panic!("{:?}", other.map(|h| h.starts)),
            }
        };
        assert!(problem(&[1, 11], &[0, 0]).contains("token id 11"));
        assert!(problem(&[1, 2], &[0, 2]).contains("token type 2"));
        assert!(problem(&[1; 17], &[0; 17]).contains("at most 16"));
        assert!(problem(&[1, 2], &[0]).contains("2 token ids but 1 type ids"));
    }

    #[test]
    fn f16_prefixed_and_tensorflow_named_checkpoints_load_as_the_same_model() {
        let config = tiny_config();
        let weights = tiny_weights(&config);
        let plain = Bert::load(
            &config,
            &safetensors_file(&weights, Dtype::F32, str::to_owned),
        )
        .unwrap();
        let renamed = |name: &str| {
            format!("bert.{name}")
                .replace("LayerNorm.weight", "LayerNorm.gamma")
                .replace("LayerNorm.bias", "LayerNorm.beta")
        };
        let converted =
            Bert::load(&config, &safetensors_file(&weights, Dtype::F16, renamed)).unwrap();

        let ids = [1, 4, 8, 2];
        assert_eq!(encode_alone(&plain, &ids), encode_alone(&converted, &ids));
    }

    #[test]
    fn weights_that_do_not_fit_the_config_are_named_in_the_error() {
        let config = tiny_config();
        let mut weights = tiny_weights(&config);
        let dropped = weights.remove(weights.len() - 1).0;
        let error = Bert::load(
            &config,
            &safetensors_file(&weights, Dtype::F32, str::to_owned),
        )
        .err()
        .unwrap();
        assert!(error.to_string().contains(&dropped), "{error}");

        let wider = BertConfig {
            hidden_size: 16,
            num_attention_heads: 4,
            ..tiny_config()
        };
        let error = Bert::load(
            &wider,
            &safetensors_file(&tiny_weights(&config), Dtype::F32, str::to_owned),
        )
        .err()
        .unwrap();
        let message = error.to_string();
        assert!(
            message.contains("attention.self.query.weight has shape [8, 8]")
                && message.contains("implies [16, 16]"),
            "{message}"
        );

        let swish = BertConfig {
            hidden_act: "swish".to_owned(),
            ..tiny_config()
        };
        let error = Bert::load(&swish, &[]).err().unwrap();
        assert!(error.to_string().contains("swish"), "{error}");
        let roberta = BertConfig {
            model_type: Some("xlm-roberta".to_owned()),
            ..tiny_config()
        };
        let error = Bert::load(&roberta, &[]).err().unwrap();
        assert!(error.to_string().contains("xlm-roberta"), "{error}");
        assert!(matches!(
            Bert::load(&config, b"not a safetensors file"),
            Err(BertError::Format(_))
        ));
    }

    #[test]
    fn activations_are_known_by_their_hugging_face_names() {
        assert_eq!(Activation::from_name("gelu"), Some(Activation::GeluErf));
        assert_eq!(
            Activation::from_name("gelu_pytorch_tanh"),
            Some(Activation::GeluTanh)
        );
        assert_eq!(Activation::from_name("relu"), Some(Activation::Relu));
        assert_eq!(Activation::from_name("swish"), None);
    }
}
