//! The validator's own HTTP server: `GET /metrics` (Prometheus), `GET /scores` (JSON) and `GET /` (an
//! HTML table of the same, for people).

use std::fmt::Write as _;
use std::net::SocketAddr;

use axum::Router;
use axum::extract::State;
use axum::http::header;
use axum::response::{Html, IntoResponse, Json};
use axum::routing::get;

use crate::dashboard::{Dashboard, MinerRow, ScoresView};
use crate::metrics::Metrics;
use crate::throughput::WINDOW;

#[derive(Debug, Clone)]
struct AppState {
    metrics: Metrics,
    dashboard: Dashboard,
}

/// The router.
pub fn router(metrics: Metrics, dashboard: Dashboard) -> Router {
    Router::new()
        .route("/metrics", get(metrics_handler))
        .route("/scores", get(scores_handler))
        .route("/", get(index_handler))
        .with_state(AppState { metrics, dashboard })
}

/// Binds `addr` and serves the router until the task is dropped; returns the bound address.
pub async fn serve(
    addr: SocketAddr,
    metrics: Metrics,
    dashboard: Dashboard,
) -> std::io::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    let app = router(metrics, dashboard);
    let handle = tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!("status server stopped: {e}");
        }
    });
    Ok((local, handle))
}

async fn metrics_handler(State(s): State<AppState>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        s.metrics.render(),
    )
}

async fn scores_handler(State(s): State<AppState>) -> Json<ScoresView> {
    Json(s.dashboard.view())
}

async fn index_handler(State(s): State<AppState>) -> Html<String> {
    Html(render_html(&s.dashboard.view()))
}

/// Escapes text for HTML (verdict details can quote what a miner sent).
fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

fn ms(v: Option<f64>) -> String {
    v.map_or_else(|| "–".to_owned(), |v| format!("{v:.1}"))
}

/// The HTML page.
pub fn render_html(v: &ScoresView) -> String {
    let mut h = String::new();
    let _ = write!(
        h,
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>tensorproof validator</title>\
         <meta http-equiv=\"refresh\" content=\"10\">\
         <style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse}}\
         td,th{{border:1px solid #ccc;padding:4px 8px;text-align:right}}td.l{{text-align:left;font-family:monospace}}\
         .ok{{color:#070}}.bad{{color:#a00}}</style></head><body>\
         <h1>tensorproof validator</h1><p>round {} at block {} · <a href=\"/scores\">JSON</a> · \
         <a href=\"/metrics\">metrics</a></p><table><tr><th>uid</th><th>hotkey</th><th>EMA score</th>\
         <th>weight</th><th>computed</th><th>passed</th><th>failed</th><th>last verdict</th><th>RTT ms</th>\
         <th>compute ms</th><th>matmul TFLOP/s</th></tr>",
        v.round, v.block
    );
    for m in &v.miners {
        let last = m.recent.first();
        let (class, verdict) = match last {
            Some(r) if r.passed => ("ok", "passed".to_owned()),
            Some(r) => ("bad", format!("{}: {}", r.reason, r.detail)),
            None => ("", "–".to_owned()),
        };
        let _ = write!(
            h,
            "<tr><td>{}</td><td class=\"l\">{}</td><td>{:.4}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>\
             <td class=\"l {class}\">{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            m.uid,
            esc(&m.hotkey),
            m.score,
            m.weight,
            m.computed_weight,
            m.passed,
            m.failed,
            esc(&verdict),
            ms(last.and_then(|r| r.rtt_ms)),
            ms(last.and_then(|r| r.compute_ms)),
            tflops(m),
        );
    }
    h.push_str("</table>");
    render_devices(&mut h, v);
    if let Some(o) = &v.organic {
        render_organic(&mut h, o);
    }
    h.push_str("</body></html>");
    h
}

/// A miner's matmul TFLOP/s per dtype class, `bf16 312.4 · f32 45.1` (`–` when it has none).
fn tflops(m: &MinerRow) -> String {
    if m.matmul_tflops.is_empty() {
        return "–".to_owned();
    }
    m.matmul_tflops
        .iter()
        .map(|(dtype, f)| format!("{dtype} {:.1}", f.tflops))
        .collect::<Vec<_>>()
        .join(" · ")
}

/// The per-device section: one row per (miner, device, dtype class), only when some miner named its
/// devices.
fn render_devices(h: &mut String, v: &ScoresView) {
    if v.miners.iter().all(|m| m.matmul_devices.is_empty()) {
        return;
    }
    let _ = write!(
        h,
        "<h2>Matmul throughput per device</h2><p>median TFLOP/s of the last {WINDOW} passed answers per device \
         and dtype class, by the device index the miner named</p><table><tr><th>uid</th><th>device</th>\
         <th>dtype</th><th>TFLOP/s</th><th>answers</th></tr>"
    );
    for m in &v.miners {
        for d in &m.matmul_devices {
            let _ = write!(
                h,
                "<tr><td>{}</td><td>{}</td><td class=\"l\">{}</td><td>{:.1}</td><td>{}</td></tr>",
                m.uid, d.device, d.dtype, d.tflops, d.samples
            );
        }
    }
    h.push_str("</table>");
}

/// The organic section: requests by outcome, verified share and cost, then one row per serving miner.
fn render_organic(h: &mut String, o: &crate::api::stats::OrganicView) {
    let outcomes = o
        .requests
        .iter()
        .map(|(k, n)| format!("{} {n}", esc(k)))
        .collect::<Vec<_>>()
        .join(" · ");
    let dollars = |v: Option<f64>| v.map_or_else(|| "–".to_owned(), |v| format!("{v:.4}"));
    let _ = write!(
        h,
        "<h2>Organic serving (API)</h2><p>requests: {} · verified share {:.3} · subnet ${} per million tokens          at ${:.2} per GPU-hour</p><table><tr><th>uid</th><th>requests</th><th>tokens</th><th>tokens/s</th>         <th>TTFT p50 ms</th><th>TTFT p90 ms</th><th>checks passed</th><th>checks failed</th>         <th>$ per million tokens</th></tr>",
        if outcomes.is_empty() {
            "–".to_owned()
        } else {
            outcomes
        },
        o.verified_share,
        dollars(o.subnet_cost_per_million_dollars),
        o.gpu_dollars_per_hour,
    );
    for m in &o.miners {
        let _ = write!(
            h,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{:.1}</td><td>{}</td><td>{}</td><td>{}</td>             <td class=\"{}\">{}</td><td>{}</td></tr>",
            m.uid,
            m.requests,
            m.tokens,
            m.tokens_per_second,
            ms(m.ttft_p50_ms),
            ms(m.ttft_p90_ms),
            m.checks_passed,
            if m.checks_failed > 0 { "bad" } else { "" },
            m.checks_failed,
            dollars(m.cost_per_million_dollars),
        );
    }
    h.push_str("</table>");
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::time::Duration;

    use super::*;
    use crate::api::metrics::ApiMetrics;
    use crate::api::stats::OrganicStats;
    use crate::throughput::{DeviceTflops, Tflops};

    #[test]
    fn the_page_shows_matmul_tflops_per_class_and_per_device() {
        let row = |uid: u16| MinerRow {
            uid,
            hotkey: format!("hk{uid}"),
            score: 0.5,
            weight: 0,
            computed_weight: 0,
            passed: 3,
            failed: 0,
            recent: Vec::new(),
            matmul_tflops: BTreeMap::new(),
            matmul_devices: Vec::new(),
        };
        let mut view = ScoresView {
            miners: vec![row(1), row(2)],
            ..ScoresView::default()
        };
        let html = render_html(&view);
        assert!(html.contains("<th>matmul TFLOP/s</th>"), "{html}");
        assert!(!html.contains("Matmul throughput per device"), "{html}");
        view.miners[0].matmul_tflops = BTreeMap::from([
            (
                "bf16",
                Tflops {
                    tflops: 312.44,
                    samples: 4,
                },
            ),
            (
                "f32",
                Tflops {
                    tflops: 45.06,
                    samples: 2,
                },
            ),
        ]);
        view.miners[0].matmul_devices = vec![
            DeviceTflops {
                device: 0,
                dtype: "bf16",
                tflops: 300.0,
                samples: 2,
            },
            DeviceTflops {
                device: 1,
                dtype: "bf16",
                tflops: 324.9,
                samples: 2,
            },
        ];
        let html = render_html(&view);
        // uid 1's last column lists its classes; uid 2, with none, shows a dash.
        assert!(html.contains("<td>bf16 312.4 · f32 45.1</td></tr>"), "{html}");
        let row2 = &html[html.find("<tr><td>2</td>").unwrap()..];
        let row2 = &row2[..row2.find("</tr>").unwrap()];
        assert_eq!(row2.matches("<td").count(), 11, "one cell per column: {row2}");
        assert!(row2.ends_with("<td>–</td>"), "{row2}");
        assert!(html.contains("<h2>Matmul throughput per device</h2>"), "{html}");
        assert!(
            html.contains("<tr><td>1</td><td>0</td><td class=\"l\">bf16</td><td>300.0</td><td>2</td></tr>"),
            "{html}"
        );
        assert!(
            html.contains("<tr><td>1</td><td>1</td><td class=\"l\">bf16</td><td>324.9</td><td>2</td></tr>"),
            "{html}"
        );
    }

    #[test]
    fn the_page_shows_organic_serving_only_when_the_api_is_on() {
        let mut view = ScoresView::default();
        assert!(!render_html(&view).contains("Organic serving"));
        let mut registry = prometheus_client::registry::Registry::default();
        let stats = OrganicStats::new(ApiMetrics::register(&mut registry), 2.0);
        stats.served(
            7,
            "complete",
            21,
            Some(Duration::from_millis(250)),
            Duration::from_millis(1250),
        );
        stats.checked(7, "wrong_token", false);
        view.organic = Some(stats.view());
        let html = render_html(&view);
        assert!(html.contains("<h2>Organic serving (API)</h2>"), "{html}");
        // uid 7: 20 tokens after the first in 1 s, one failed check shown as bad.
        assert!(
            html.contains("<tr><td>7</td><td>1</td><td>21</td><td>20.0</td><td>250.0</td>"),
            "{html}"
        );
        assert!(html.contains("<td class=\"bad\">1</td>"), "{html}");
        assert!(html.contains("complete 1"), "{html}");
    }
}
