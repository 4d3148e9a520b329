//! `tenantry config …` and `tenantry ask`: answer configuration and answers from the command line.

use std::io::Write;

use serde_json::{Value, json};

use tenantry_app::answers::version_json;
use tenantry_app::{Answers, AskRequest, PlatformScope};
use tenantry_domain::rag::{ConfigScope, ConfigVersion, RagConfig, RagSettings, Rerank};
use tenantry_domain::{TenantId, TierName};

use crate::cli::{ConfigCmd, ConfigFields};
use crate::commands::CliError;
use crate::output::{Out, print_json, table};

type Result<T> = std::result::Result<T, CliError>;

fn usage(e: impl std::fmt::Display) -> CliError {
    CliError::Usage(e.to_string())
}

fn tenant(s: &str) -> Result<TenantId> {
    TenantId::parse(s).map_err(usage)
}

fn json_object(flag: &str, text: &str) -> Result<serde_json::Map<String, Value>> {
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(m)) => Ok(m),
        _ => Err(usage(format!("{flag} must be a JSON object, e.g. '{{\"department\": \"legal\"}}'"))),
    }
}

fn read_template(path: &std::path::Path) -> Result<String> {
    std::fs::read_to_string(path).map_err(|e| usage(format!("read the template {}: {e}", path.display())))
}

/// The fields set on the command line, as a patch, and the fields to unset.
fn patch_of(f: &ConfigFields) -> Result<(RagSettings, bool)> {
    let patch = RagSettings {
        provider: f.provider.clone(),
        model: f.model.clone(),
        top_k: f.top_k,
        temperature: f.temperature,
        max_tokens: f.max_tokens,
        rerank: f.rerank.as_deref().map(Rerank::parse).transpose().map_err(|e| usage(format!("--rerank: {e}")))?,
        rerank_model: f.rerank_model.clone(),
        rerank_depth: f.rerank_depth,
        filter: f.filter.as_deref().map(|t| json_object("--filter", t)).transpose()?,
        template: f.template_file.as_deref().map(read_template).transpose()?,
        max_answer_chars: f.max_answer_chars,
    };
    let changes = !patch.is_empty() || !f.unset.is_empty();
    Ok((patch, changes))
}

/// The current version of a layer and the layer with `patch` applied and `unset` removed.
fn next_layer(versions: &[ConfigVersion], patch: &RagSettings, unset: &[String]) -> Result<(u32, RagSettings)> {
    let (current, layer) = versions.last().map_or((0, RagSettings::default()), |v| (v.version, v.settings.clone()));
    Ok((current, layer.patched(patch, unset).map_err(|e| usage(e.reason()))?))
}

fn print_config(tenant: &str, config: &RagConfig, out: &Out) {
    let doc = json!({"tenant_id": tenant, "version": config.version, "config": config.to_json()});
    if out.json {
        print_json(&doc);
        return;
    }
    println!("tenant {tenant}: configuration version {}", config.version);
    let rows: Vec<Vec<String>> = doc["config"]
        .as_object()
        .into_iter()
        .flatten()
        .filter(|(k, _)| k.as_str() != "version")
        .map(|(field, v)| {
            let value = match &v["value"] {
                Value::String(s) if field == "template" => format!("{} bytes", s.len()),
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            vec![field.clone(), value, v["level"].as_str().unwrap_or("").to_owned()]
        })
        .collect();
    table(&["field", "value", "level"], &rows);
}

pub async fn config(answers: &Answers, admin: &PlatformScope, cmd: ConfigCmd, out: &Out) -> Result<()> {
    match cmd {
        ConfigCmd::Show { tenant: t } => {
            let id = tenant(&t)?;
            let config = answers.config(&admin.act_in(id)).await?;
            print_config(&t, &config, out);
        }
        ConfigCmd::Set { tenant: t, fields } => {
            let scope = admin.act_in(tenant(&t)?);
            let (patch, changes) = patch_of(&fields)?;
            if !changes {
                return Err(usage("give at least one field to set (e.g. --top-k 3) or --unset FIELD"));
            }
            let (current, next) = next_layer(&answers.tenant_versions(&scope).await?, &patch, &fields.unset)?;
            let (version, config) = answers.set_tenant_config(&scope, next, Some(current), fields.reason).await?;
            if !out.json {
                println!("tenant {t}: configuration version {version}");
            }
            print_config(&t, &config, out);
        }
        ConfigCmd::History { tenant: t } => {
            let versions = answers.tenant_versions(&admin.act_in(tenant(&t)?)).await?;
            if out.json {
                print_json(&json!({"tenant_id": t, "versions": versions.iter().map(version_json).collect::<Vec<_>>()}));
                return Ok(());
            }
            let rows: Vec<Vec<String>> = versions
                .iter()
                .map(|v| {
                    vec![
                        v.version.to_string(),
                        tenantry_domain::tenant::format_time(v.created_at),
                        v.author.clone(),
                        v.reason.clone().unwrap_or_default(),
                        v.settings.to_json().to_string(),
                    ]
                })
                .collect();
            table(&["version", "at", "author", "reason", "settings"], &rows);
        }
        ConfigCmd::Diff { tenant: t, from, to } => {
            let changes = answers.tenant_diff(&admin.act_in(tenant(&t)?), from, to).await?;
            if out.json {
                let list: Vec<Value> =
                    changes.iter().map(|(f, a, b)| json!({"field": f, "from": a, "to": b})).collect();
                print_json(&json!({"tenant_id": t, "from": from, "to": to, "changes": list}));
                return Ok(());
            }
            if changes.is_empty() {
                println!("versions {from} and {to} of tenant {t} set the same fields");
            }
            for (field, a, b) in changes {
                println!("{field}: {} -> {}", show(&a), show(&b));
            }
        }
        ConfigCmd::Rollback { tenant: t, to, reason } => {
            let (new, config) = answers.rollback_tenant(&admin.act_in(tenant(&t)?), to, reason).await?;
            if !out.json {
                println!("tenant {t}: version {to}'s settings are current again as version {new}");
            }
            print_config(&t, &config, out);
        }
        ConfigCmd::Preview { tenant: t, question, template_file } => {
            let template = template_file.as_deref().map(read_template).transpose()?;
            let prompt = answers.preview(&admin.act_in(tenant(&t)?), template, &question).await?;
            if out.json {
                print_json(&json!({"system": prompt.system, "user": prompt.user}));
            } else {
                println!(
                    "--- system (the platform's; not configurable) ---\n{}\n--- user ---\n{}",
                    prompt.system, prompt.user
                );
            }
        }
        ConfigCmd::Defaults { tier, fields } => {
            let scope = match tier {
                Some(name) => ConfigScope::Tier(TierName::parse(&name).map_err(usage)?),
                None => ConfigScope::Platform,
            };
            let (patch, changes) = patch_of(&fields)?;
            if changes {
                let (current, next) =
                    next_layer(&answers.default_versions(admin, &scope).await?, &patch, &fields.unset)?;
                answers.set_default_config(admin, scope.clone(), next, Some(current), fields.reason).await?;
            }
            let versions = answers.default_versions(admin, &scope).await?;
            let doc = json!({
                "scope": scope.label(),
                "version": versions.last().map_or(0, |v| v.version),
                "settings": versions.last().map_or(json!({}), |v| v.settings.to_json()),
            });
            if out.json {
                print_json(&doc);
            } else {
                println!(
                    "{} layer, version {}: {}",
                    doc["scope"].as_str().unwrap_or(""),
                    doc["version"],
                    doc["settings"]
                );
            }
        }
        ConfigCmd::Providers => {
            let catalogue = answers.providers().catalogue();
            if out.json {
                print_json(
                    &json!({"providers": catalogue.iter().map(|(n, m)| json!({"name": n, "models": m})).collect::<Vec<_>>()}),
                );
            } else {
                let rows: Vec<Vec<String>> = catalogue.into_iter().map(|(n, m)| vec![n, m.join(", ")]).collect();
                table(&["provider", "models"], &rows);
            }
        }
    }
    Ok(())
}

fn show(v: &Value) -> String {
    match v {
        Value::Null => "(inherited)".to_owned(),
        Value::String(s) if s.len() > 60 => {
            format!("{:?}… ({} bytes)", &s[..s.char_indices().nth(60).map_or(s.len(), |(i, _)| i)], s.len())
        }
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

#[allow(clippy::too_many_arguments)]
pub async fn ask(
    answers: &Answers,
    admin: &PlatformScope,
    t: &str,
    question: String,
    top_k: Option<u32>,
    filter: Option<String>,
    stream: bool,
    out: &Out,
) -> Result<()> {
    let scope = admin.act_in(tenant(t)?);
    let filter = filter.as_deref().map(|f| json_object("--filter", f)).transpose()?.map(Value::Object);
    let request = AskRequest { question, filter, top_k };
    let answer = if stream && !out.json {
        let (tx, mut rx) = tokio::sync::mpsc::channel::<String>(64);
        let printer = tokio::spawn(async move {
            let mut stdout = std::io::stdout();
            while let Some(text) = rx.recv().await {
                let _ = stdout.write_all(text.as_bytes());
                let _ = stdout.flush();
            }
            println!();
        });
        let answer = answers.ask(&scope, request, Some(tx)).await;
        let _ = printer.await;
        answer?
    } else {
        answers.ask(&scope, request, None).await?
    };
    if out.json {
        print_json(&answer.to_json());
        return Ok(());
    }
    if !stream {
        println!("{}", answer.answer);
    }
    println!();
    for c in &answer.citations {
        println!("[{}] {} (document {}, chunk {}, score {:.3})", c.n, c.title, c.document_id, c.chunk, c.score);
    }
    let cost = answer.cost.as_ref().map_or("unpriced".to_owned(), |c| {
        if c.unpriced.is_empty() {
            format!("{} {}", c.amount, c.currency)
        } else {
            format!("{} {} (without unpriced {})", c.amount, c.currency, c.unpriced.join(", "))
        }
    });
    println!(
        "model {} · tokens: embedding {}, input {}, output {} · cost {cost} · config version {} · {:.1} ms (retrieve {:.1}, generate {:.1})",
        answer.model,
        answer.embedding_tokens,
        answer.input_tokens,
        answer.output_tokens,
        answer.config_version,
        answer.timings.total_ms,
        answer.timings.retrieve_ms,
        answer.timings.generate_ms
    );
    Ok(())
}

pub struct CompareArgs {
    pub question: Option<String>,
    pub questions: Option<std::path::PathBuf>,
    pub repeats: u32,
    pub tolerance: f64,
    pub monthly_queries: Option<u64>,
    pub format: crate::cli::CompareFormat,
}

fn questions_for(tenant: &str, args: &CompareArgs) -> Result<Vec<String>> {
    if let Some(path) = &args.questions {
        let text = std::fs::read_to_string(path).map_err(|e| usage(format!("read {}: {e}", path.display())))?;
        let list: Vec<String> = text.lines().map(str::trim).filter(|l| !l.is_empty()).map(str::to_owned).collect();
        if list.is_empty() {
            return Err(usage(format!("{} holds no questions", path.display())));
        }
        return Ok(list);
    }
    if let Some(q) = &args.question {
        return Ok(vec![q.clone()]);
    }
    tenantry_domain::corpus::SEED_TENANTS
        .iter()
        .find(|s| s.id == tenant)
        .map(|s| vec![tenantry_domain::corpus::sample_question(s.domain).to_owned()])
        .ok_or_else(|| {
            usage(format!("give --question or --questions: {tenant} is not a seed tenant with a default question"))
        })
}

fn money(d: Option<rust_decimal::Decimal>) -> String {
    d.map_or("unpriced".to_owned(), |d| d.normalize().to_string())
}

pub async fn compare(
    answers: &Answers,
    admin: &PlatformScope,
    tenants: &[String],
    args: CompareArgs,
    out: &Out,
) -> Result<()> {
    if !(0.0..=1.0).contains(&args.tolerance) {
        return Err(usage("--tolerance must be between 0 and 1"));
    }
    if args.repeats == 0 || args.repeats > 100 {
        return Err(usage("--repeats must be between 1 and 100"));
    }
    let mut results = Vec::new();
    for t in tenants {
        let scope = admin.act_in(tenant(t)?);
        let questions = questions_for(t, &args)?;
        results.push(answers.compare(&scope, &questions, args.repeats, args.tolerance, args.monthly_queries).await?);
    }
    if out.json {
        let doc: Vec<Value> = results
            .iter()
            .map(|c| {
                json!({
                    "tenant_id": c.tenant.as_str(), "name": c.name, "documents": c.documents,
                    "avg_bytes": c.avg_bytes, "avg_tokens": c.avg_tokens,
                    "monthly_queries": c.monthly_queries, "volume_source": c.volume_source,
                    "recommended": c.recommended, "current": c.current,
                    "projected_monthly": c.recommended.and_then(|r| c.projected_monthly(r)).map(|d| d.to_string()),
                    "trials": c.trials.iter().map(|t| json!({
                        "provider": t.provider, "model": t.model, "top_k": t.top_k, "rerank": t.rerank.as_str(),
                        "current": t.current, "p50_ms": t.p50_ms, "input_tokens": t.input_tokens,
                        "output_tokens": t.output_tokens, "embedding_tokens": t.embedding_tokens,
                        "cost_per_query": t.cost_per_query.map(|d| d.to_string()), "quality": t.quality,
                    })).collect::<Vec<_>>(),
                })
            })
            .collect();
        print_json(&json!({"tolerance": args.tolerance, "tenants": doc}));
        return Ok(());
    }
    use crate::cli::CompareFormat;
    if args.format == CompareFormat::Csv {
        println!(
            "tenant,documents,avg_bytes,avg_tokens,provider,model,top_k,rerank,current,recommended,p50_ms,input_tokens,output_tokens,embedding_tokens,cost_per_query,quality,monthly_queries,projected_monthly"
        );
        for c in &results {
            for (i, t) in c.trials.iter().enumerate() {
                println!(
                    "{},{},{:.0},{:.0},{},{},{},{},{},{},{:.3},{:.1},{:.1},{:.1},{},{:.3},{},{}",
                    c.tenant,
                    c.documents,
                    c.avg_bytes,
                    c.avg_tokens,
                    t.provider,
                    t.model,
                    t.top_k,
                    t.rerank.as_str(),
                    t.current,
                    c.recommended == Some(i),
                    t.p50_ms,
                    t.input_tokens,
                    t.output_tokens,
                    t.embedding_tokens,
                    t.cost_per_query.map_or(String::new(), |d| d.to_string()),
                    t.quality,
                    c.monthly_queries,
                    c.projected_monthly(i).map_or(String::new(), |d| d.to_string()),
                );
            }
        }
        return Ok(());
    }
    let headers = [
        "Tenant",
        "Doc Count",
        "Avg Doc Size",
        "Current Cost/Query",
        "Current p50",
        "Optimal Model",
        "Optimal top_k",
        "Rerank",
        "Quality",
        "Projected Cost",
    ];
    let rows: Vec<Vec<String>> = results
        .iter()
        .map(|c| {
            let cur = &c.trials[c.current];
            let rec = c.recommended.map(|r| &c.trials[r]);
            vec![
                format!("{} ({})", c.tenant, c.name),
                c.documents.to_string(),
                format!("{:.0} bytes / {:.0} tokens", c.avg_bytes, c.avg_tokens),
                money(cur.cost_per_query),
                format!("{:.1} ms", cur.p50_ms),
                rec.map_or("-".into(), |r| format!("{}/{}", r.provider, r.model)),
                rec.map_or("-".into(), |r| r.top_k.to_string()),
                rec.map_or("-".into(), |r| r.rerank.as_str().to_owned()),
                rec.map_or("-".into(), |r| format!("{:.2} (current {:.2})", r.quality, cur.quality)),
                c.recommended
                    .and_then(|r| c.projected_monthly(r))
                    .map_or("unpriced".into(), |d| format!("{d}/month at {} queries", c.monthly_queries)),
            ]
        })
        .collect();
    if args.format == CompareFormat::Markdown {
        println!("| {} |", headers.join(" | "));
        println!("|{}|", headers.iter().map(|_| "---").collect::<Vec<_>>().join("|"));
        for r in &rows {
            println!("| {} |", r.join(" | "));
        }
    } else {
        table(&headers, &rows);
    }
    println!();
    println!(
        "Quality: the share of each question's terms found in the passages given to the model (a retrieval proxy; it cannot \
         tell models apart). Recommended: the cheapest candidate within {} of the best quality.",
        args.tolerance
    );
    for c in &results {
        println!("{}: volume from {}", c.tenant, c.volume_source);
    }
    Ok(())
}
