//! `cortado cost`: the monthly Fargate cost of what each config runs, a total, and savings
//! the user could choose (ARM64, FARGATE_SPOT for interruptible services, right-sizing),
//! from the rendered definitions and the dated price table in [`crate::cost`]. Reads ECR (the
//! images' manifests) unless `--offline`; makes no change.

use serde_json::{Value, json};

use super::session;
use crate::aws::Clients;
use crate::aws::ecr::{EcrImage, index_architectures};
use crate::cost::{self, MultiArch, Saving, Shape};
use crate::deploy::local::Local;
use crate::error::{Diagnostic, Error, ExitCode, Result};
use crate::report::{Format, Printer};
use crate::settings::Settings;

/// Options of `cortado cost`.
#[derive(Debug, Clone, Default)]
pub struct CostOptions {
    /// Another currency to show next to USD: its code and units per USD.
    pub currency: Option<(String, f64)>,
    /// Do not read ECR (the ARM64 saving is then "if the images are multi-arch").
    pub offline: bool,
}

/// The service definition tag that marks a service as fine on FARGATE_SPOT.
pub const INTERRUPTIBLE_TAG: &str = "cortado:interruptible";

struct Line {
    service: String,
    cluster: String,
    region: String,
    shape: Option<Shape>,
    monthly: Option<f64>,
    savings: Vec<Saving>,
    note: Option<String>,
}

/// Flags of `cortado cost`.
#[derive(Debug, Clone, clap::Args)]
pub struct CostArgs {
    /// Show another currency next to USD (with --rate): a 3-letter code such as EUR.
    #[arg(long, value_name = "CODE", requires = "rate")]
    pub currency: Option<String>,
    /// Units of --currency per US dollar, e.g. 0.92.
    #[arg(long, value_name = "N", requires = "currency")]
    pub rate: Option<f64>,
    /// Do not read ECR to see whether the images are multi-arch.
    #[arg(long)]
    pub offline: bool,
}

pub async fn run(settings: &Settings, printer: &mut Printer, args: &CostArgs) -> Result<ExitCode> {
    let opts = &CostOptions {
        currency: args.currency.clone().zip(args.rate),
        offline: args.offline,
    };
    if let Some((code, rate)) = &opts.currency
        && (code.len() != 3
            || !code.chars().all(|c| c.is_ascii_uppercase())
            || !(*rate > 0.0 && rate.is_finite()))
    {
        return Err(Error::input(
            Diagnostic::error(format!("--currency {code} --rate {rate}: expected a 3-letter code in capitals and a positive rate"))
                .hint("for example --currency EUR --rate 0.92 (euros per US dollar)"),
        ));
    }
    let ctx = settings.render_context()?;
    printer.set_secrets(ctx.secrets.clone());
    let locals = session::load_locals(settings, &ctx, printer)?;
    let session = if opts.offline {
        None
    } else {
        match session::connect(settings, &locals, printer).await {
            Ok(s) => Some(s),
            Err(e) => {
                printer.info(&format!(
                    "cost: ECR not checked ({})",
                    e.diagnostics.first().map_or("", |d| d.message.as_str())
                ));
                None
            }
        }
    };
    let mut lines = Vec::new();
    for local in &locals {
        let clients = session.as_ref().map(|s| &s.clients);
        lines.push(line(local, settings, clients).await?);
    }
    let total: f64 = lines.iter().filter_map(|l| l.monthly).sum();
    // The available savings of each service applied together, not added up.
    let total_savings: f64 = lines
        .iter()
        .filter_map(|l| {
            let shape = l.shape.as_ref()?;
            Some(l.monthly? - cost::combined(shape, &l.savings, &l.region)?)
        })
        .sum();
    match printer.format {
        Format::Json => printer.out_json(&json_of(&lines, total, total_savings, opts)),
        Format::Text => printer.out(&text_of(&lines, total, total_savings, opts)),
    }
    Ok(ExitCode::Success)
}

async fn line(local: &Local, settings: &Settings, clients: Option<&Clients>) -> Result<Line> {
    let service = local.service_name().unwrap_or("(no service)").to_string();
    let region = settings
        .region
        .clone()
        .or_else(|| local.config.region.clone())
        .or_else(|| clients.map(|c| c.region().to_string()))
        .unwrap_or_default();
    let shape = Shape::from_json(&local.task_json, local.service_json.as_ref());
    let monthly = shape.as_ref().and_then(|s| cost::monthly(s, &region));
    let note = match (&shape, monthly) {
        (None, _) => Some("no task-level cpu and memory: not a Fargate size".to_string()),
        (Some(_), None) if region.is_empty() => Some("no region: set `region:` or --region".into()),
        (Some(_), None) => Some(format!(
            "no prices for region {region} in the table of {}",
            cost::PRICE_DATE
        )),
        _ => None,
    };
    let interruptible = local
        .service_json
        .as_ref()
        .and_then(|s| s.get("tags"))
        .and_then(Value::as_array)
        .is_some_and(|tags| {
            tags.iter().any(|t| {
                t.get("key").and_then(Value::as_str) == Some(INTERRUPTIBLE_TAG)
                    && t.get("value").and_then(Value::as_str) == Some("true")
            })
        });
    let savings = match &shape {
        Some(s) if monthly.is_some() => {
            let multi = if s.arch == cost::Arch::X86 {
                multi_arch(&local.task_json, clients).await
            } else {
                MultiArch::Yes
            };
            cost::savings(s, &local.task_json, interruptible, &multi, &region)
        }
        _ => Vec::new(),
    };
    Ok(Line {
        service,
        cluster: local.config.cluster.clone(),
        region,
        shape,
        monthly,
        savings,
        note,
    })
}

/// Whether every container image has an arm64 variant, as far as ECR tells.
async fn multi_arch(task: &Value, clients: Option<&Clients>) -> MultiArch {
    let images: Vec<&str> = task
        .get("containerDefinitions")
        .and_then(Value::as_array)
        .map(|cs| cs.iter().filter_map(|c| c.get("image")?.as_str()).collect())
        .unwrap_or_default();
    let Some(clients) = clients else {
        return MultiArch::Unknown("ECR not checked".into());
    };
    for image in images {
        let Some(ecr) = EcrImage::parse(image) else {
            return MultiArch::Unknown(format!("{image} is not in ECR"));
        };
        if ecr.region != clients.region() {
            return MultiArch::Unknown(format!("{image} is in another region"));
        }
        match clients.image_manifest(&ecr).await {
            Ok(Some((media, manifest))) => match index_architectures(&media, &manifest) {
                Some(archs) if archs.iter().any(|a| a == "arm64") => {}
                Some(archs) => {
                    return MultiArch::No(format!(
                        "{image} is built for {} only",
                        archs.join(", ")
                    ));
                }
                None => return MultiArch::No(format!("{image} is a single-architecture image")),
            },
            Ok(None) => return MultiArch::Unknown(format!("ECR has no {image}")),
            Err(e) => {
                return MultiArch::Unknown(format!(
                    "ECR not readable: {}",
                    e.diagnostics.first().map_or("", |d| d.message.as_str())
                ));
            }
        }
    }
    MultiArch::Yes
}

fn money(usd: f64, opts: &CostOptions) -> String {
    match &opts.currency {
        Some((code, rate)) => format!("${usd:.2} ({:.2} {code})", usd * rate),
        None => format!("${usd:.2}"),
    }
}

fn text_of(lines: &[Line], total: f64, total_savings: f64, opts: &CostOptions) -> String {
    let mut out = format!(
        "Monthly Fargate cost: Linux on-demand prices of {} (a dated table in cortado, not live), {} hours a month\n\n",
        cost::PRICE_DATE,
        cost::HOURS_PER_MONTH
    );
    let rows: Vec<[String; 6]> = lines
        .iter()
        .map(|l| {
            let s = l.shape.as_ref();
            [
                format!("{} ({}, {})", l.service, l.cluster, l.region),
                s.map_or("-".into(), |s| s.desired.to_string()),
                s.map_or("-".into(), |s| format!("{}/{}", s.cpu, s.memory)),
                s.map_or("-".into(), |s| match s.arch {
                    cost::Arch::X86 => "x86_64".into(),
                    cost::Arch::Arm => "arm64".into(),
                }),
                s.map_or("-".into(), |s| format!("{:.0}%", s.spot_share * 100.0)),
                l.monthly.map_or_else(|| "-".into(), |m| money(m, opts)),
            ]
        })
        .collect();
    let headers = [
        "service",
        "tasks",
        "cpu/memory",
        "arch",
        "spot",
        "per month",
    ];
    out.push_str(&crate::report::table(headers, &rows));
    out.push_str(&format!("total: {} a month\n", money(total, opts)));
    for l in lines {
        if let Some(n) = &l.note {
            out.push_str(&format!("{}: {n}\n", l.service));
        }
    }
    let any = lines.iter().any(|l| !l.savings.is_empty());
    if any {
        out.push_str("\nSavings you could choose:\n");
        for l in lines {
            for s in &l.savings {
                out.push_str(&format!(
                    "  {}: -{}/month{}: {}\n",
                    l.service,
                    money(s.monthly, opts),
                    if s.available {
                        ""
                    } else {
                        " (not available yet)"
                    },
                    s.detail
                ));
            }
        }
        let available = lines.iter().flat_map(|l| &l.savings).any(|s| s.available);
        if available {
            out.push_str(&format!(
                "with every available saving together: -{}/month (they overlap, so this is less than their sum)\n",
                money(total_savings, opts)
            ));
        } else {
            out.push_str("none of them is available yet: each says above what it needs first\n");
        }
    }
    out
}

fn json_of(lines: &[Line], total: f64, total_savings: f64, opts: &CostOptions) -> Value {
    let round = |v: f64| (v * 100.0).round() / 100.0;
    json!({
        "price_date": cost::PRICE_DATE,
        "hours_per_month": cost::HOURS_PER_MONTH,
        "currency": opts.currency.as_ref().map(|(c, r)| json!({"code": c, "rate": r})),
        "services": lines.iter().map(|l| json!({
            "service": l.service,
            "cluster": l.cluster,
            "region": l.region,
            "tasks": l.shape.as_ref().map(|s| s.desired),
            "cpu": l.shape.as_ref().map(|s| s.cpu),
            "memory": l.shape.as_ref().map(|s| s.memory),
            "architecture": l.shape.as_ref().map(|s| match s.arch { cost::Arch::X86 => "x86_64", cost::Arch::Arm => "arm64" }),
            "spot_share": l.shape.as_ref().map(|s| s.spot_share),
            "monthly_usd": l.monthly.map(round),
            "note": l.note,
            "savings": l.savings.iter().map(|s| json!({
                "kind": s.kind, "monthly_usd": round(s.monthly), "available": s.available, "detail": s.detail,
            })).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
        "total_monthly_usd": round(total),
        "available_savings_monthly_usd": round(total_savings),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cost::{Arch, Shape};

    fn line(available: bool) -> Line {
        let shape = Shape {
            cpu: 256,
            memory: 512,
            arch: Arch::X86,
            desired: 1,
            spot_share: 0.0,
        };
        Line {
            service: "web".into(),
            cluster: "c".into(),
            region: "us-east-1".into(),
            shape: Some(shape.clone()),
            monthly: Some(9.01),
            savings: vec![Saving {
                kind: "arm64",
                monthly: 1.8,
                detail: "runtimePlatform.cpuArchitecture ARM64".into(),
                available,
                to: shape,
            }],
            note: None,
        }
    }

    /// With savings listed but none available, the text says so rather than "-$0.00/month".
    #[test]
    fn no_available_saving_is_said_not_summed_to_zero() {
        let text = text_of(&[line(false)], 9.01, 0.0, &CostOptions::default());
        assert!(!text.contains("-$0.00/month"), "{text}");
        assert!(text.contains("none of them is available yet"), "{text}");
        let text = text_of(&[line(true)], 9.01, 1.8, &CostOptions::default());
        assert!(
            text.contains("with every available saving together: -$1.80/month"),
            "{text}"
        );
    }
}
