//! A tenant's answer configuration (the customization issue): which provider and model answer,
//! how many chunks are retrieved, how they are reranked, the prompt template and the answer's
//! limits. Configuration, not flags: every change is a numbered version with its author and
//! reason, and a field is resolved built-in default < platform < tier < tenant, each resolved
//! field naming the level that decided it (as flag evaluation does).

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::documents::Metadata;
use crate::invalid::Invalid;
use crate::prompt;

/// Where a configuration layer lives.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ConfigScope {
    Platform,
    Tier(crate::TierName),
    Tenant(crate::TenantId),
}

impl ConfigScope {
    pub fn level(&self) -> ConfigLevel {
        match self {
            ConfigScope::Platform => ConfigLevel::Platform,
            ConfigScope::Tier(_) => ConfigLevel::Tier,
            ConfigScope::Tenant(_) => ConfigLevel::Tenant,
        }
    }

    /// `platform`, `tier:<name>` or `tenant:<id>`.
    pub fn label(&self) -> String {
        match self {
            ConfigScope::Platform => "platform".to_owned(),
            ConfigScope::Tier(t) => format!("tier:{t}"),
            ConfigScope::Tenant(t) => format!("tenant:{t}"),
        }
    }
}

/// The level that decided a resolved field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConfigLevel {
    /// Tenantry's built-in default.
    Default,
    Platform,
    Tier,
    Tenant,
}

impl ConfigLevel {
    pub fn as_str(self) -> &'static str {
        match self {
            ConfigLevel::Default => "default",
            ConfigLevel::Platform => "platform",
            ConfigLevel::Tier => "tier",
            ConfigLevel::Tenant => "tenant",
        }
    }
}

/// How retrieved chunks are reordered before the prompt is built.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Rerank {
    Off,
    /// In process: the vector score blended with the question's term overlap (see `rerank`).
    Lexical,
    /// A provider's Cohere-style `/rerank` endpoint, with `rerank_model` (`provider/model`).
    Model,
}

impl Rerank {
    pub fn as_str(self) -> &'static str {
        match self {
            Rerank::Off => "off",
            Rerank::Lexical => "lexical",
            Rerank::Model => "model",
        }
    }

    pub fn parse(value: &str) -> Result<Self, Invalid> {
        match value {
            "off" => Ok(Rerank::Off),
            "lexical" => Ok(Rerank::Lexical),
            "model" => Ok(Rerank::Model),
            other => Err(Invalid::new(format!("rerank {other:?} is not known: use off, lexical or model"))),
        }
    }
}

/// One layer: the fields it sets (absent ones inherit).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RagSettings {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_k: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rerank: Option<Rerank>,
    /// Candidates retrieved for the reranker to choose `top_k` from.
    /// With `rerank: model`: the reranker, `provider/model`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rerank_model: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rerank_depth: Option<u32>,
    /// Metadata every retrieval is filtered by, unless the request gives its own filter.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filter: Option<Map<String, Value>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<String>,
    /// The answer is cut at this many characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_answer_chars: Option<u32>,
}

pub const MAX_TOP_K: u32 = 50;
pub const MAX_RERANK_DEPTH: u32 = 200;
pub const MAX_TOKENS: u32 = 16_384;

/// Every field's name, in display order.
pub const FIELDS: [&str; 11] = [
    "provider",
    "model",
    "top_k",
    "temperature",
    "max_tokens",
    "rerank",
    "rerank_model",
    "rerank_depth",
    "filter",
    "template",
    "max_answer_chars",
];

/// The local extractive answerer: works offline, with no key.
pub const LOCAL_PROVIDER: &str = "local";
pub const EXTRACTIVE_MODEL: &str = "extractive";

impl RagSettings {
    /// Parses a layer from JSON (unknown fields refused) and checks each field's range.
    pub fn from_json(value: &Value) -> Result<Self, Invalid> {
        let settings: RagSettings = serde_json::from_value(value.clone())
            .map_err(|e| Invalid::new(format!("the configuration is not valid: {e}")))?;
        settings.check_ranges()?;
        Ok(settings)
    }

    pub fn to_json(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }

    pub fn is_empty(&self) -> bool {
        self == &RagSettings::default()
    }

    /// Ranges of each field set (the cross-field rules are checked on the resolved config).
    pub fn check_ranges(&self) -> Result<(), Invalid> {
        if let Some(p) = &self.provider
            && !valid_name(p)
        {
            return Err(Invalid::new(format!("provider {p:?} must be 1-64 characters of a-z, 0-9, _ . -")));
        }
        if let Some(m) = &self.model
            && (m.is_empty() || m.len() > 128 || m.chars().any(|c| c.is_control() || c.is_whitespace()))
        {
            return Err(Invalid::new(format!("model {m:?} must be 1-128 characters without spaces")));
        }
        if let Some(m) = &self.rerank_model
            && !m.split_once('/').is_some_and(|(p, model)| valid_name(p) && !model.is_empty() && model.len() <= 128)
        {
            return Err(Invalid::new(format!("rerank_model {m:?} must be provider/model, e.g. cohere/rerank-v3.5")));
        }
        if let Some(k) = self.top_k
            && !(1..=MAX_TOP_K).contains(&k)
        {
            return Err(Invalid::new(format!("top_k must be between 1 and {MAX_TOP_K}; got {k}")));
        }
        if let Some(t) = self.temperature
            && !(t.is_finite() && (0.0..=2.0).contains(&t))
        {
            return Err(Invalid::new(format!("temperature must be between 0 and 2; got {t}")));
        }
        if let Some(m) = self.max_tokens
            && !(1..=MAX_TOKENS).contains(&m)
        {
            return Err(Invalid::new(format!("max_tokens must be between 1 and {MAX_TOKENS}; got {m}")));
        }
        if let Some(d) = self.rerank_depth
            && !(1..=MAX_RERANK_DEPTH).contains(&d)
        {
            return Err(Invalid::new(format!("rerank_depth must be between 1 and {MAX_RERANK_DEPTH}; got {d}")));
        }
        if let Some(f) = &self.filter {
            Metadata::parse(&Value::Object(f.clone())).map_err(|e| Invalid::new(format!("filter: {e}")))?;
        }
        if let Some(t) = &self.template {
            prompt::PromptTemplate::validate(t)?;
        }
        if let Some(c) = self.max_answer_chars
            && !(100..=100_000).contains(&c)
        {
            return Err(Invalid::new(format!("max_answer_chars must be between 100 and 100000; got {c}")));
        }
        Ok(())
    }

    /// This layer with `patch`'s fields set over it and the `unset` fields removed.
    pub fn patched(&self, patch: &RagSettings, unset: &[String]) -> Result<RagSettings, Invalid> {
        let mut out = self.clone();
        for field in unset {
            match field.as_str() {
                "provider" => out.provider = None,
                "model" => out.model = None,
                "top_k" => out.top_k = None,
                "temperature" => out.temperature = None,
                "max_tokens" => out.max_tokens = None,
                "rerank" => out.rerank = None,
                "rerank_model" => out.rerank_model = None,
                "rerank_depth" => out.rerank_depth = None,
                "filter" => out.filter = None,
                "template" => out.template = None,
                "max_answer_chars" => out.max_answer_chars = None,
                other => {
                    return Err(Invalid::new(format!(
                        "{other:?} is not a configuration field: use one of {}",
                        FIELDS.join(", ")
                    )));
                }
            }
        }
        macro_rules! over {
            ($($f:ident),*) => { $( if patch.$f.is_some() { out.$f = patch.$f.clone(); } )* };
        }
        over!(
            provider,
            model,
            top_k,
            temperature,
            max_tokens,
            rerank,
            rerank_model,
            rerank_depth,
            filter,
            template,
            max_answer_chars
        );
        Ok(out)
    }
}

fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '_' | '.' | '-'))
}

/// One field's resolved value and the level that set it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Resolved<T> {
    pub value: T,
    pub level: ConfigLevel,
}

/// The configuration an answer runs with.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RagConfig {
    pub provider: Resolved<String>,
    pub model: Resolved<String>,
    pub top_k: Resolved<u32>,
    pub temperature: Resolved<f64>,
    pub max_tokens: Resolved<u32>,
    pub rerank: Resolved<Rerank>,
    /// `provider/model`, or empty.
    pub rerank_model: Resolved<String>,
    pub rerank_depth: Resolved<u32>,
    pub filter: Resolved<Map<String, Value>>,
    pub template: Resolved<String>,
    pub max_answer_chars: Resolved<u32>,
    /// The tenant layer's version (0: the tenant never set one).
    pub version: u32,
}

/// Built-in defaults: the extractive answerer, 5 chunks, no rerank, the default template.
pub fn builtin() -> RagSettings {
    RagSettings {
        provider: Some(LOCAL_PROVIDER.to_owned()),
        model: Some(EXTRACTIVE_MODEL.to_owned()),
        top_k: Some(5),
        temperature: Some(0.2),
        max_tokens: Some(512),
        rerank: Some(Rerank::Off),
        rerank_model: Some(String::new()),
        rerank_depth: Some(20),
        filter: Some(Map::new()),
        template: Some(prompt::DEFAULT_TEMPLATE.to_owned()),
        max_answer_chars: Some(4_000),
    }
}

/// The layers that resolve a tenant's configuration, lowest first.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RagLayers {
    pub platform: RagSettings,
    pub tier: RagSettings,
    pub tenant: RagSettings,
    /// The tenant layer's version (0: none).
    pub tenant_version: u32,
}

impl RagLayers {
    /// Each field from the highest level that sets it. Cross-field rules: `rerank_depth` is at
    /// least `top_k` when reranking (raised to it otherwise).
    pub fn resolve(&self) -> RagConfig {
        let base = builtin();
        let layers = [
            (ConfigLevel::Platform, &self.platform),
            (ConfigLevel::Tier, &self.tier),
            (ConfigLevel::Tenant, &self.tenant),
        ];
        macro_rules! pick {
            ($f:ident) => {{
                let mut r =
                    Resolved { value: base.$f.clone().expect("builtin sets every field"), level: ConfigLevel::Default };
                for (level, layer) in layers {
                    if let Some(v) = &layer.$f {
                        r = Resolved { value: v.clone(), level };
                    }
                }
                r
            }};
        }
        let mut config = RagConfig {
            provider: pick!(provider),
            model: pick!(model),
            top_k: pick!(top_k),
            temperature: pick!(temperature),
            max_tokens: pick!(max_tokens),
            rerank: pick!(rerank),
            rerank_model: pick!(rerank_model),
            rerank_depth: pick!(rerank_depth),
            filter: pick!(filter),
            template: pick!(template),
            max_answer_chars: pick!(max_answer_chars),
            version: self.tenant_version,
        };
        if config.rerank.value != Rerank::Off && config.rerank_depth.value < config.top_k.value {
            config.rerank_depth.value = config.top_k.value;
        }
        config
    }
}

impl RagConfig {
    /// `provider/model`, as the price book and the ledger name the model.
    pub fn model_label(&self) -> String {
        format!("{}/{}", self.provider.value, self.model.value)
    }

    /// Chunks to retrieve: `rerank_depth` when reranking, else `top_k` (or `top_k` as asked).
    pub fn retrieve_depth(&self, top_k: u32) -> u32 {
        match self.rerank.value {
            Rerank::Off => top_k,
            Rerank::Lexical | Rerank::Model => self.rerank_depth.value.max(top_k),
        }
    }

    /// `{field: {value, level}}`, for display.
    pub fn to_json(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }
}

/// One stored version of a layer.
#[derive(Debug, Clone, PartialEq)]
pub struct ConfigVersion {
    pub scope: ConfigScope,
    pub version: u32,
    pub settings: RagSettings,
    pub author: String,
    pub reason: Option<String>,
    pub created_at: time::OffsetDateTime,
}

/// Fields that differ between two layers: `(field, from, to)` with `null` for unset.
pub fn diff(from: &RagSettings, to: &RagSettings) -> Vec<(String, Value, Value)> {
    let (a, b) = (from.to_json(), to.to_json());
    FIELDS
        .iter()
        .filter_map(|f| {
            let (x, y) = (a.get(*f).cloned().unwrap_or(Value::Null), b.get(*f).cloned().unwrap_or(Value::Null));
            (x != y).then(|| ((*f).to_owned(), x, y))
        })
        .collect()
}

/// Reorders `candidates` (text, vector score) for `question` and returns the indices of the best
/// `keep`, best first, with their blended scores: 0.5 × vector score (in [-1, 1], moved to
/// [0, 1]) + 0.5 × the share of the question's distinct terms (≥ 3 characters, lowercased) the
/// candidate contains. Ties keep the retrieval order.
pub fn rerank_lexical(question: &str, candidates: &[(&str, f32)], keep: usize) -> Vec<(usize, f32)> {
    let terms = terms_of(question);
    let mut scored: Vec<(usize, f32)> = candidates
        .iter()
        .enumerate()
        .map(|(i, (text, score))| {
            let overlap = if terms.is_empty() {
                0.0
            } else {
                let have = terms_of(text);
                terms.iter().filter(|t| have.contains(*t)).count() as f32 / terms.len() as f32
            };
            (i, 0.5 * ((score + 1.0) / 2.0) + 0.5 * overlap)
        })
        .collect();
    scored.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    scored.truncate(keep);
    scored
}

/// Distinct lowercase alphanumeric terms of at least 3 characters.
pub fn terms_of(text: &str) -> std::collections::BTreeSet<String> {
    text.split(|c: char| !c.is_alphanumeric()).filter(|w| w.chars().count() >= 3).map(str::to_lowercase).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn each_field_comes_from_the_highest_level_that_sets_it() {
        let layers = RagLayers {
            platform: RagSettings { top_k: Some(8), max_tokens: Some(300), ..Default::default() },
            tier: RagSettings { top_k: Some(6), rerank: Some(Rerank::Lexical), ..Default::default() },
            tenant: RagSettings { top_k: Some(3), ..Default::default() },
            tenant_version: 4,
        };
        let c = layers.resolve();
        assert_eq!((c.top_k.value, c.top_k.level), (3, ConfigLevel::Tenant));
        assert_eq!((c.rerank.value, c.rerank.level), (Rerank::Lexical, ConfigLevel::Tier));
        assert_eq!((c.max_tokens.value, c.max_tokens.level), (300, ConfigLevel::Platform));
        assert_eq!((c.model.value.as_str(), c.model.level), (EXTRACTIVE_MODEL, ConfigLevel::Default));
        assert_eq!(c.version, 4);
        assert_eq!(c.retrieve_depth(3), 20);
    }

    #[test]
    fn a_rerank_depth_below_top_k_is_raised_to_it() {
        let layers = RagLayers {
            tenant: RagSettings {
                top_k: Some(10),
                rerank: Some(Rerank::Lexical),
                rerank_depth: Some(4),
                ..Default::default()
            },
            ..Default::default()
        };
        assert_eq!(layers.resolve().rerank_depth.value, 10);
    }

    #[test]
    fn out_of_range_and_unknown_fields_are_refused_with_a_sentence() {
        for (bad, says) in [
            (json!({"top_k": 0}), "top_k must be between 1 and 50"),
            (json!({"top_k": 51}), "top_k must be between 1 and 50"),
            (json!({"temperature": 2.5}), "temperature must be between 0 and 2"),
            (json!({"max_tokens": 0}), "max_tokens"),
            (json!({"rerank": "cohere"}), "not valid"),
            (json!({"rerank_model": "no-slash"}), "provider/model"),
            (json!({"rerank_depth": 500}), "rerank_depth"),
            (json!({"max_answer_chars": 5}), "max_answer_chars"),
            (json!({"provider": "Open AI"}), "provider"),
            (json!({"topk": 3}), "unknown field"),
            (json!({"filter": {"a": {"b": 1}}}), "filter"),
            (json!({"template": "{{ secrets }}"}), "secrets"),
        ] {
            let e = RagSettings::from_json(&bad).unwrap_err();
            assert!(e.reason().contains(says), "{bad}: {e}");
        }
    }

    #[test]
    fn a_patch_sets_and_unsets_fields() {
        let layer = RagSettings { top_k: Some(3), model: Some("m".into()), ..Default::default() };
        let every = RagSettings::from_json(&serde_json::json!({
            "provider": "p", "model": "m", "top_k": 2, "temperature": 0.5, "max_tokens": 9, "rerank": "model",
            "rerank_model": "p/r", "rerank_depth": 9, "filter": {"a": 1}, "max_answer_chars": 500,
            "template": "{{ question }}{{ chunks }}"
        }))
        .unwrap();
        assert_eq!(RagSettings::default().patched(&every, &[]).unwrap(), every, "a patch carries every field");
        let unset: Vec<String> = FIELDS.iter().map(|f| (*f).to_owned()).collect();
        assert_eq!(every.patched(&RagSettings::default(), &unset).unwrap(), RagSettings::default());
        let patch = RagSettings { temperature: Some(0.0), ..Default::default() };
        let out = layer.patched(&patch, &["model".into()]).unwrap();
        assert_eq!(out, RagSettings { top_k: Some(3), temperature: Some(0.0), ..Default::default() });
        assert!(layer.patched(&patch, &["nope".into()]).is_err());
        assert_eq!(
            diff(&layer, &out),
            vec![("model".to_owned(), json!("m"), Value::Null), ("temperature".to_owned(), Value::Null, json!(0.0))]
        );
    }

    #[test]
    fn lexical_rerank_prefers_chunks_sharing_the_question_terms() {
        let candidates = [("the cafeteria menu for monday", 0.40), ("quarterly revenue recognition policy", 0.35)];
        let order = rerank_lexical("What is the revenue recognition policy?", &candidates, 2);
        assert_eq!(order.iter().map(|(i, _)| *i).collect::<Vec<_>>(), vec![1, 0]);
        assert_eq!(rerank_lexical("x", &candidates, 1).len(), 1);
    }
}

/// The share of the question's distinct terms (≥ 3 characters) that appear in the passages
/// given to the model: the retrieval-quality proxy of answers and of the configuration
/// comparison. 1.0 when the question has no such term. It measures what retrieval put in front
/// of the model, not how well a model writes: it cannot tell two models apart.
pub fn coverage(question: &str, passages: &[&str]) -> f64 {
    let terms = terms_of(question);
    if terms.is_empty() {
        return 1.0;
    }
    let mut have = std::collections::BTreeSet::new();
    for p in passages {
        have.extend(terms_of(p));
    }
    terms.iter().filter(|t| have.contains(*t)).count() as f64 / terms.len() as f64
}

/// One configuration tried by the comparison, and what it measured.
#[derive(Debug, Clone, PartialEq)]
pub struct Trial {
    pub provider: String,
    pub model: String,
    pub top_k: u32,
    pub rerank: Rerank,
    /// The tenant's configuration as it is.
    pub current: bool,
    pub p50_ms: f64,
    pub input_tokens: f64,
    pub output_tokens: f64,
    pub embedding_tokens: f64,
    /// Mean cost per query (`None`: unpriced).
    pub cost_per_query: Option<rust_decimal::Decimal>,
    /// Mean [`coverage`] over the questions.
    pub quality: f64,
}

/// The recommended trial: the cheapest whose quality is within `tolerance` of the best (ties:
/// lower p50 latency, then fewer chunks). Unpriced trials take part only when every trial is
/// unpriced (a cost that cannot be computed is not a saving).
pub fn recommend(trials: &[Trial], tolerance: f64) -> Option<usize> {
    let any_priced = trials.iter().any(|t| t.cost_per_query.is_some());
    let eligible = |t: &Trial| t.cost_per_query.is_some() || !any_priced;
    let best = trials.iter().filter(|t| eligible(t)).map(|t| t.quality).fold(f64::NEG_INFINITY, f64::max);
    trials
        .iter()
        .enumerate()
        .filter(|(_, t)| eligible(t) && t.quality + tolerance >= best)
        .min_by(|(_, a), (_, b)| {
            a.cost_per_query.cmp(&b.cost_per_query).then(a.p50_ms.total_cmp(&b.p50_ms)).then(a.top_k.cmp(&b.top_k))
        })
        .map(|(i, _)| i)
}

#[cfg(test)]
mod comparison_tests {
    use super::*;

    fn trial(model: &str, top_k: u32, cost: Option<&str>, quality: f64, p50: f64) -> Trial {
        Trial {
            provider: "p".into(),
            model: model.into(),
            top_k,
            rerank: Rerank::Off,
            current: false,
            p50_ms: p50,
            input_tokens: 0.0,
            output_tokens: 0.0,
            embedding_tokens: 0.0,
            cost_per_query: cost.map(|c| c.parse().unwrap()),
            quality,
        }
    }

    #[test]
    fn coverage_counts_question_terms_found_in_the_passages() {
        assert_eq!(coverage("refund window days", &["refunds within 30 days", "the window closes"]), 2.0 / 3.0);
        assert_eq!(coverage("a b", &["x"]), 1.0);
    }

    #[test]
    fn the_cheapest_within_the_quality_tolerance_is_recommended() {
        let trials = [
            trial("big", 10, Some("0.045"), 0.90, 40.0),
            trial("small", 5, Some("0.008"), 0.87, 20.0),
            trial("small", 3, Some("0.006"), 0.60, 15.0),
            trial("free", 3, None, 0.95, 5.0),
        ];
        assert_eq!(recommend(&trials, 0.05), Some(1), "unpriced is not free when others are priced");
        assert_eq!(recommend(&trials, 0.01), Some(0), "only the best priced one is within 0.01");
        assert_eq!(recommend(&trials[..3], 0.5), Some(2));
        assert_eq!(recommend(&[], 0.05), None);
    }
}
