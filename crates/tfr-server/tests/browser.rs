//! The web UI in a real browser: headless Chromium driven over WebDriver (Debian's `chromium`
//! and `chromium-driver`) against a real server on 127.0.0.1 over a real SQLite file.
//!
//! Without Chromium or chromedriver each test prints `skipped: chromium/chromedriver not
//! installed` and passes, unless `CI` is set: then it fails (`.ci/run` installs both).
//! `TFR_CHROMIUM` and `TFR_CHROMEDRIVER` name other binaries.
//!
//! Every page visited is checked for a clean start: `app.js` marks `<html data-js="ready">`
//! when it has initialised, and the browser console (chromedriver's log) must hold no error —
//! no JavaScript exception, no Content-Security-Policy violation, no failed resource.
//!
//! The screenshots in `docs/screenshots/` come from the ignored test `screenshots`, on the
//! history of `tfr demo` (it runs the `tfr` binary, so build that first):
//!
//! ```sh
//! cargo build -p tfr && cargo test -p tfr-server --test browser -- --ignored screenshots
//! ```
//!
//! `TFR_SCREENSHOT_DIR` writes them elsewhere; `TFR_SCREENSHOT_SCHEME=dark` takes them in dark
//! mode (`prefers-color-scheme` emulated).

mod webdriver;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use serde_json::{Value, json};
use tfr_server::{AppState, MonitoringLink, ServerConfig};
use tfr_store::Store;
use tfr_store_sqlite::SqliteStore;
use webdriver::{Browser, ENTER, Options, TAB};

const WAIT: Duration = Duration::from_secs(10);

/// A server on 127.0.0.1 over a fresh SQLite file, with a Grafana monitoring link.
struct Server {
    base: String,
    client: reqwest::Client,
    _dir: tempfile::TempDir,
}

impl Server {
    async fn start() -> Server {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn Store> = Arc::new(SqliteStore::open(dir.path()).unwrap());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let config = ServerConfig {
            monitoring: vec![MonitoringLink {
                name: "Grafana".to_owned(),
                url: "https://grafana.example.com/d/platform?from={from_ms}&to={to_ms}&var-system={system}".to_owned(),
            }],
            ..ServerConfig::default()
        };
        let state = AppState::new(store, config);
        tokio::spawn(tfr_server::serve(listener, state, std::future::pending()));
        Server {
            base,
            client: reqwest::Client::new(),
            _dir: dir,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Records `events` in one all-or-nothing array; their ids, in order.
    async fn post_all(&self, events: &[Value]) -> Vec<String> {
        let mut ids = Vec::new();
        for chunk in events.chunks(1000) {
            let response = self
                .client
                .post(self.url("/api/v1/events"))
                .json(&chunk)
                .send()
                .await
                .unwrap();
            let status = response.status();
            let body: Value = response.json().await.unwrap();
            assert!(status.is_success(), "{status}: {body}");
            for event in body["events"].as_array().unwrap() {
                ids.push(event["id"].as_str().unwrap().to_owned());
            }
        }
        ids
    }

    async fn post_one(&self, event: &Value) -> String {
        let ids = self.post_all(std::slice::from_ref(event)).await;
        ids.into_iter().next().unwrap()
    }
}

fn ago(now: Timestamp, minutes: i64) -> String {
    (now - SignedDuration::from_mins(minutes)).to_string()
}

/// Navigates to `path` and checks the page started cleanly (see the module's documentation).
async fn open(browser: &Browser, server: &Server, path: &str) {
    browser.goto(&server.url(path)).await;
    ready(browser, path).await;
}

/// Waits for `app.js` to have initialised, then checks the console.
async fn ready(browser: &Browser, what: &str) {
    browser
        .wait_for(
            &format!("app.js to initialise on {what}"),
            "return document.readyState === 'complete' && document.documentElement.dataset.js === 'ready';",
            WAIT,
        )
        .await;
    assert_clean_console(browser, what).await;
}

/// No JavaScript error, CSP violation or failed load in the console since the last check.
async fn assert_clean_console(browser: &Browser, what: &str) {
    let problems: Vec<String> = browser
        .console()
        .await
        .into_iter()
        .filter(|entry| {
            let message = entry["message"].as_str().unwrap_or_default();
            entry["level"] == "SEVERE"
                || message.contains("Content Security Policy")
                || message.contains("Refused to")
        })
        .map(|entry| entry["message"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert!(
        problems.is_empty(),
        "{what}: the browser console has errors:\n{}",
        problems.join("\n")
    );
}

/// The page is no wider than the `width` px viewport; names what sticks out if it is. (A
/// phone zooms out to fit a page wider than the screen, so `innerWidth` must be `width` too.)
async fn assert_no_horizontal_scroll(browser: &Browser, width: u32, what: &str) {
    let answer = browser
        .js(
            "const width = arguments[0];
             const wide = [];
             for (const el of document.querySelectorAll('body *')) {
               const box = el.getBoundingClientRect();
               if (box.right > width + 0.5 && wide.length < 5) {
                 wide.push(el.tagName.toLowerCase() + (el.className ? '.' + el.className : '') + ' right=' + Math.round(box.right));
               }
             }
             return [document.documentElement.scrollWidth, window.innerWidth, wide];",
            vec![json!(width)],
        )
        .await;
    let scroll_width = answer[0].as_f64().unwrap();
    let inner_width = answer[1].as_f64().unwrap();
    assert!(
        scroll_width <= inner_width && inner_width <= f64::from(width),
        "{what}: scrollWidth {scroll_width}, innerWidth {inner_width}, viewport {width}; \
         wide elements: {}",
        answer[2]
    );
}

async fn card_ids(browser: &Browser) -> Vec<String> {
    let ids = browser
        .eval("return Array.from(document.querySelectorAll('#feed article.card'), (c) => c.dataset.id);")
        .await;
    ids.as_array()
        .unwrap()
        .iter()
        .map(|id| id.as_str().unwrap().to_owned())
        .collect()
}

async fn texts(browser: &Browser, css: &str) -> Vec<String> {
    browser
        .js(
            "return Array.from(document.querySelectorAll(arguments[0]), (e) => e.textContent.trim());",
            vec![json!(css)],
        )
        .await
        .as_array()
        .unwrap()
        .iter()
        .map(|text| text.as_str().unwrap().to_owned())
        .collect()
}

async fn count(browser: &Browser, css: &str) -> u64 {
    browser
        .js(
            "return document.querySelectorAll(arguments[0]).length;",
            vec![json!(css)],
        )
        .await
        .as_u64()
        .unwrap()
}

const SYSTEMS: [&str; 5] = ["player", "cdn-edge", "search", "payments", "auth"];
const KINDS: [&str; 5] = ["deploy", "config", "feature_flag", "schema", "ab_test"];

/// 330 events, one every 23 minutes back from `now`: every 25th an incident, every 47th a
/// "Zebra" migration step (the search test looks for those).
fn feed_history(now: Timestamp) -> Vec<Value> {
    (0..330)
        .map(|i: i64| {
            let index = usize::try_from(i).unwrap();
            let system = SYSTEMS[index % SYSTEMS.len()];
            let kind = if i % 25 == 3 {
                "incident"
            } else {
                KINDS[index % KINDS.len()]
            };
            let title = if i % 47 == 0 {
                format!("Zebra migration step {i}")
            } else {
                format!("Change {i} on {system}")
            };
            let author = ["alice", "bob", "carol"][index % 3];
            json!({
                "occurred_at": ago(now, i * 23 + 5),
                "title": title,
                "system": system,
                "author": author,
                "kind": kind,
                "environment": if i % 4 == 0 { "staging" } else { "production" },
                "tags": [format!("batch:{}", i / 50)],
            })
        })
        .collect()
}

/// The feed: first page, keyboard, infinite scroll to the end, the live banner, search and a
/// quick filter.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn feed_scrolls_searches_filters_and_goes_live() {
    let Some(tools) = webdriver::tools_or_skip() else {
        return;
    };
    let server = Server::start().await;
    let now = Timestamp::now();
    let history = feed_history(now);
    let posted = server.post_all(&history).await;
    let browser = Browser::start(&tools, &Options::default()).await;

    open(&browser, &server, "/").await;
    let first = card_ids(&browser).await;
    assert_eq!(first.len(), 50, "the first page has 50 cards");
    assert_eq!(first, posted[..50], "newest first");
    assert!(count(&browser, "#feed h2.day").await >= 1, "day headings");
    let time = texts(&browser, "#feed article.card time").await;
    assert!(
        time[0].contains(" ago") && time[0].contains('·'),
        "times are relative and absolute: {:?}",
        time[0]
    );
    let grafana = browser
        .eval("return document.querySelector('#feed article.card a.monitor').href;")
        .await;
    assert!(
        grafana
            .as_str()
            .unwrap()
            .starts_with("https://grafana.example.com/d/platform?from="),
        "monitoring button: {grafana}"
    );

    // Keyboard: Tab goes through the skip link, the search box, then the cards' links.
    let mut focused = Vec::new();
    for _ in 0..30 {
        browser.press(TAB).await;
        let active = browser
            .eval(
                "const e = document.activeElement;
                 if (e.matches('a.skip')) return 'skip';
                 if (e.id === 'q') return 'search';
                 if (e.closest('article.card') && e.tagName === 'A') return 'card-link';
                 return e.tagName.toLowerCase();",
            )
            .await;
        focused.push(active.as_str().unwrap().to_owned());
    }
    assert_eq!(focused[0], "skip", "the skip link comes first: {focused:?}");
    let search_at = focused.iter().position(|f| f == "search");
    let card_at = focused.iter().position(|f| f == "card-link");
    assert!(
        matches!((search_at, card_at), (Some(s), Some(c)) if s < c),
        "Tab reaches the search box, then the cards' links: {focused:?}"
    );

    // Infinite scroll until the end: every event exactly once, newest first.
    let mut loaded = first.len();
    for _ in 0..20 {
        browser
            .eval("window.scrollTo(0, document.documentElement.scrollHeight);")
            .await;
        let now_loaded = browser
            .wait_for(
                "the next page of cards",
                &format!(
                    "const n = document.querySelectorAll('#feed article.card').length;
                     return (n > {loaded} || !document.querySelector('#feed a.more')) ? n : 0;"
                ),
                WAIT,
            )
            .await
            .as_u64()
            .unwrap();
        loaded = usize::try_from(now_loaded).unwrap();
        if count(&browser, "#feed a.more").await == 0 {
            break;
        }
    }
    let all = card_ids(&browser).await;
    assert!(all.len() >= 300, "300+ cards loaded: {}", all.len());
    let unique: HashSet<&String> = all.iter().collect();
    assert_eq!(unique.len(), all.len(), "no card twice");
    assert_eq!(all, posted, "every event, newest first, none missing");
    let days = texts(&browser, "#feed h2.day").await;
    let unique_days: HashSet<&String> = days.iter().collect();
    assert_eq!(
        unique_days.len(),
        days.len(),
        "one heading per day: {days:?}"
    );
    assert_clean_console(&browser, "the feed after scrolling").await;

    // Live: an event recorded now shows the banner; its button shows the event.
    browser.eval("window.scrollTo(0, 0);").await;
    assert_eq!(
        browser
            .eval("return document.getElementById('live').hidden;")
            .await,
        json!(true)
    );
    let live_id = server
        .post_one(&json!({"title": "Live arrival", "system": "player", "author": "dave", "kind": "deploy"}))
        .await;
    let banner = browser
        .wait_for(
            "the new-events banner",
            "const live = document.getElementById('live');
             return !live.hidden && live.textContent.trim();",
            WAIT,
        )
        .await;
    assert!(
        banner.as_str().unwrap().contains("1 new event"),
        "banner: {banner}"
    );
    browser.click(&browser.find("#live button").await).await;
    browser
        .wait_for(
            "the reloaded feed",
            &format!(
                "return document.documentElement.dataset.js === 'ready' && \
                 document.querySelector('#feed article.card').dataset.id === '{live_id}';"
            ),
            WAIT,
        )
        .await;
    assert_clean_console(&browser, "the feed after the banner").await;

    // Search: type a query, submit with Enter; only matching cards, and the URL says so.
    let search = browser.find("#q").await;
    browser.type_into(&search, "zebra").await;
    browser.type_into(&search, ENTER).await;
    browser
        .wait_for(
            "the search results",
            "return location.search.includes('q=zebra') && document.documentElement.dataset.js === 'ready';",
            WAIT,
        )
        .await;
    ready(&browser, "the search results").await;
    let titles = texts(&browser, "#feed article.card h3").await;
    assert_eq!(titles.len(), 8, "8 zebra events: {titles:?}");
    assert!(
        titles.iter().all(|t| t.starts_with("Zebra migration step")),
        "{titles:?}"
    );
    assert_eq!(
        browser
            .eval("return document.getElementById('q').value;")
            .await,
        json!("zebra")
    );

    // A quick filter: choosing a kind submits the form; the URL reflects it.
    open(&browser, &server, "/").await;
    browser
        .click(
            &browser
                .find("select[name=kind] option[value=incident]")
                .await,
        )
        .await;
    browser
        .wait_for(
            "the kind filter",
            "return location.search.includes('kind=incident') && document.documentElement.dataset.js === 'ready';",
            WAIT,
        )
        .await;
    ready(&browser, "the kind filter").await;
    let kinds = texts(&browser, "#feed article.card .kind").await;
    assert_eq!(kinds.len(), 14, "14 incidents: {kinds:?}");
    assert!(kinds.iter().all(|k| k == "incident"), "{kinds:?}");
    let url = browser.current_url().await;
    // A shared link shows the same view.
    open(&browser, &server, &url[server.base.len()..]).await;
    assert_eq!(texts(&browser, "#feed article.card .kind").await, kinds);
    browser.close().await;
}

/// A unified diff of two files: a small one with known line numbers, and one long enough to
/// be collapsed.
fn sample_diff() -> String {
    let mut diff = String::from(
        "diff --git a/src/player.rs b/src/player.rs\n\
         --- a/src/player.rs\n\
         +++ b/src/player.rs\n\
         @@ -10,4 +10,5 @@ fn start()\n \
         let a = 1;\n\
         -let b = 2;\n\
         +let b = 3;\n\
         +let c = 4;\n \
         let d = 5;\n \
         let e = 6;\n\
         diff --git a/generated/big.txt b/generated/big.txt\n\
         --- /dev/null\n\
         +++ b/generated/big.txt\n\
         @@ -0,0 +1,450 @@\n",
    );
    for line in 1..=450 {
        diff.push_str(&format!("+generated line {line}\n"));
    }
    diff
}

/// The event page (Markdown, the diff, attributes, around), stats and correlation.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn event_stats_and_correlate_pages_render() {
    let Some(tools) = webdriver::tools_or_skip() else {
        return;
    };
    let server = Server::start().await;
    let now = Timestamp::now();
    // Ten days: a player deploy each day, followed 20 minutes later by a CDN incident on
    // seven of them; some config noise.
    let mut history = Vec::new();
    for day in 1..=10_i64 {
        let deploy_at = day * 24 * 60;
        history.push(json!({
            "occurred_at": ago(now, deploy_at), "title": format!("Deploy player 5.{day}"),
            "system": "player", "author": "alice", "kind": "deploy", "team": "video",
        }));
        if day <= 7 {
            history.push(json!({
                "occurred_at": ago(now, deploy_at - 20), "title": format!("CDN errors up ({day})"),
                "system": "cdn-edge", "author": "pagerduty", "kind": "incident", "team": "network",
            }));
        }
        history.push(json!({
            "occurred_at": ago(now, deploy_at - 300), "title": format!("Tune cache TTL {day}"),
            "system": "search", "author": "bob", "kind": "config", "team": "search",
        }));
    }
    server.post_all(&history).await;
    let diff_event = json!({
        "occurred_at": ago(now, 24 * 60 + 10),
        "title": "Deploy player 5.2.1 to production",
        "system": "player", "author": "ci-bot", "kind": "deploy", "environment": "production",
        "version": "5.2.1", "tags": ["release:5.2"],
        "links": [{"url": "https://ci.example.com/pipelines/981", "title": "pipeline"}],
        "description": "Canary went **fine** for 30 min.\n\n- faster start\n- see [PR](https://git.example.com/pr/7)",
        "attributes": {"ticket": "OPS-1234", "canary": {"minutes": 30}},
        "diff": sample_diff(),
    });
    let id = server.post_one(&diff_event).await;
    let browser = Browser::start(
        &tools,
        &Options {
            time_zone: "Europe/Paris",
            ..Options::default()
        },
    )
    .await;

    // The event page.
    open(&browser, &server, &format!("/events/{id}")).await;
    assert_eq!(
        texts(&browser, "main h1").await,
        ["Deploy player 5.2.1 to production"]
    );
    assert_eq!(
        texts(&browser, ".description strong").await,
        ["fine"],
        "Markdown rendered"
    );
    assert_eq!(count(&browser, ".description li").await, 2);
    assert_eq!(
        texts(&browser, ".diff .file summary .path").await,
        ["src/player.rs", "generated/big.txt"]
    );
    // Rows of the small file: [old, new, code].
    let rows = browser
        .eval(
            "return Array.from(document.querySelectorAll('.diff .file')[0].querySelectorAll('tr:not(.hunk)'),
               (tr) => [tr.className].concat(Array.from(tr.cells, (td) => td.textContent)));",
        )
        .await;
    assert_eq!(
        rows,
        json!([
            ["ctx", "10", "10", " let a = 1;"],
            ["del", "11", "", "-let b = 2;"],
            ["add", "", "11", "+let b = 3;"],
            ["add", "", "12", "+let c = 4;"],
            ["ctx", "12", "13", " let d = 5;"],
            ["ctx", "13", "14", " let e = 6;"],
        ])
    );
    let colours = browser
        .eval(
            "const add = getComputedStyle(document.querySelector('.diff tr.add')).backgroundColor;
             const del = getComputedStyle(document.querySelector('.diff tr.del')).backgroundColor;
             const ctx = getComputedStyle(document.querySelector('.diff tr.ctx')).backgroundColor;
             return [add, del, ctx];",
        )
        .await;
    assert!(
        colours[0] != colours[1] && colours[0] != colours[2] && colours[1] != colours[2],
        "added, removed and context lines are coloured apart: {colours}"
    );
    assert_eq!(
        browser
            .eval(
                "return Array.from(document.querySelectorAll('.diff details.file'), (d) => d.open);"
            )
            .await,
        json!([true, false]),
        "the 450-line file is collapsed"
    );
    assert!(
        texts(&browser, ".attributes pre").await[0].contains("\"OPS-1234\""),
        "attributes"
    );
    let around = texts(&browser, ".around li a").await;
    assert!(
        around.contains(&"Deploy player 5.1".to_owned())
            && around.contains(&"CDN errors up (1)".to_owned()),
        "around this time: {around:?}"
    );
    assert_eq!(
        texts(&browser, ".event .links a.monitor").await,
        ["Grafana"]
    );

    // Stats: follows the viewer's time zone; SVG charts, top lists, heat map.
    open(&browser, &server, "/stats").await;
    browser
        .wait_for(
            "the stats page in the viewer's zone",
            "return location.search.includes('tz=Europe%2FParis') && document.documentElement.dataset.js === 'ready';",
            WAIT,
        )
        .await;
    ready(&browser, "/stats").await;
    assert!(count(&browser, "svg.bars-chart rect.c0").await >= 10);
    assert!(count(&browser, "svg.bars-chart g > title").await >= 10);
    assert_eq!(count(&browser, "svg.heat-map rect").await, 7 * 24);
    let legend = texts(&browser, ".legend li").await;
    assert!(
        legend.iter().any(|l| l.starts_with("deploy")),
        "legend: {legend:?}"
    );
    let systems = texts(&browser, "#top-system ~ ol.bars li a").await;
    assert_eq!(systems, ["player", "search", "cdn-edge"]);
    let authors = texts(&browser, "#top-author ~ ol.bars li a").await;
    assert!(authors.contains(&"pagerduty".to_owned()), "{authors:?}");
    let chart_size = browser
        .eval("const box = document.querySelector('svg.bars-chart').getBoundingClientRect(); return [box.width, box.height];")
        .await;
    assert!(
        chart_size[0].as_f64().unwrap() > 300.0 && chart_size[1].as_f64().unwrap() > 100.0,
        "the chart is drawn at a readable size: {chart_size}"
    );

    // Correlation: fill the form, submit, read the verdict.
    open(&browser, &server, "/correlate").await;
    let a = browser.find("form.correlate input[name=a]").await;
    browser.type_into(&a, "system:player kind:deploy").await;
    let b = browser.find("form.correlate input[name=b]").await;
    browser.type_into(&b, "system:cdn-edge kind:incident").await;
    let window = browser.find("form.correlate input[name=window]").await;
    browser.type_into(&window, "1h").await;
    browser
        .click(&browser.find("form.correlate button[type=submit]").await)
        .await;
    let verdict = browser
        .wait_for(
            "the verdict",
            "const v = document.querySelector('.verdict-text');
             return document.documentElement.dataset.js === 'ready' && v && v.textContent.trim();",
            WAIT,
        )
        .await;
    ready(&browser, "/correlate with a verdict").await;
    let verdict = verdict.as_str().unwrap();
    assert!(verdict.contains("within 1h"), "verdict: {verdict}");
    let facts = texts(&browser, ".verdict .facts dd").await;
    assert!(facts[0].starts_with("8 of 11"), "hits: {facts:?}");
    assert!(count(&browser, "ol.matches > li").await >= 7);
    browser.close().await;
}

/// At 375 px, no page scrolls sideways, even with long unbroken words, URLs and diff lines.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn phone_width_has_no_horizontal_scroll() {
    let Some(tools) = webdriver::tools_or_skip() else {
        return;
    };
    let server = Server::start().await;
    let now = Timestamp::now();
    let long_word = "averyveryverylongidentifierwithoutanyspaces_".repeat(4);
    let mut history = feed_history(now)[..60].to_vec();
    history.push(json!({
        "occurred_at": ago(now, 1),
        "title": format!("Deploy {long_word}"),
        "system": format!("system-{long_word}"),
        "author": format!("author-{long_word}"),
        "kind": "deploy", "environment": "production", "team": "video", "version": long_word,
        "tags": [format!("tag:{long_word}"), "release:5.2"],
        "links": [{"url": format!("https://ci.example.com/{long_word}/{long_word}")}],
        "description": format!("`{long_word}` and ```\n{long_word}{long_word}\n```\n\nhttps://example.com/{long_word}"),
        "attributes": {"key": long_word.clone(), "nested": {"list": [long_word.clone()]}},
        "diff": format!("--- a/{long_word}\n+++ b/{long_word}\n@@ -1 +1 @@\n-{long_word}{long_word}\n+{long_word}{long_word}{long_word}\n"),
    }));
    let ids = server.post_all(&history).await;
    let long_id = ids.last().unwrap().clone();
    let browser = Browser::start(
        &tools,
        &Options {
            width: 375,
            height: 812,
            ..Options::default()
        },
    )
    .await;
    for path in [
        "/".to_owned(),
        format!("/events/{long_id}"),
        format!("/events/{}", ids[0]),
        "/stats".to_owned(),
        "/correlate?a=kind:deploy&b=kind:incident&window=2h".to_owned(),
    ] {
        open(&browser, &server, &path).await;
        assert_no_horizontal_scroll(&browser, 375, &path).await;
    }
    // The search box fits and is usable.
    open(&browser, &server, "/").await;
    let search = browser
        .eval("const box = document.getElementById('q').getBoundingClientRect(); return [box.left, box.right, box.height];")
        .await;
    assert!(
        search[0].as_f64().unwrap() >= 0.0
            && search[1].as_f64().unwrap() <= 375.0
            && search[2].as_f64().unwrap() >= 24.0,
        "search box: {search}"
    );
    browser.close().await;
}

/// WCAG contrast (AA: 4.5:1) of every text element of interest, over its actual background,
/// in the light and the dark scheme.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn text_has_enough_contrast_in_light_and_dark_mode() {
    let Some(tools) = webdriver::tools_or_skip() else {
        return;
    };
    let server = Server::start().await;
    let now = Timestamp::now();
    let mut history = feed_history(now)[..40].to_vec();
    history.push(json!({
        "occurred_at": ago(now, 1), "title": "Tune the pool", "system": "search",
        "author": "hugo", "kind": "config", "environment": "production",
        "description": "Rollback: set `pool_size` back to **39**.",
        "tags": ["ticket:DATA-1"], "links": [{"url": "https://tickets.example.com/DATA-1"}],
        "attributes": {"previous": 39},
        "diff": "--- a/values.yaml\n+++ b/values.yaml\n@@ -1,3 +1,3 @@\n db:\n-  pool_size: 39\n+  pool_size: 49\n",
    }));
    let ids = server.post_all(&history).await;
    let browser = Browser::start(&tools, &Options::default()).await;
    let measure = "const parse = (c) => {
          const p = c.match(/rgba?\\(([^)]+)\\)/)[1].split(/[ ,\\/]+/).filter(Boolean).map(Number.parseFloat);
          return [p[0], p[1], p[2], p.length > 3 ? p[3] : 1];
        };
        const background = (el) => {
          const layers = [];
          for (let e = el; e; e = e.parentElement) {
            const c = parse(getComputedStyle(e).backgroundColor);
            if (c[3] > 0) { layers.push(c); if (c[3] >= 1) break; }
          }
          let base = [255, 255, 255];
          for (const l of layers.reverse()) base = base.map((v, i) => l[i] * l[3] + v * (1 - l[3]));
          return base;
        };
        const luminance = (rgb) => {
          const f = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); };
          return 0.2126 * f(rgb[0]) + 0.7152 * f(rgb[1]) + 0.0722 * f(rgb[2]);
        };
        const low = [];
        let checked = 0;
        for (const el of document.querySelectorAll(arguments[0])) {
          if (!el.textContent.trim() || el.getClientRects().length === 0) continue;
          checked += 1;
          const a = luminance(parse(getComputedStyle(el).color));
          const b = luminance(background(el));
          const ratio = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
          if (ratio < 4.5) low.push(el.tagName.toLowerCase() + '.' + el.className + ' ' + JSON.stringify(el.textContent.trim().slice(0, 30)) + ': ' + ratio.toFixed(2));
        }
        return [checked, low.slice(0, 10)];";
    let pages = [
        (
            "/".to_owned(),
            ".top a, .search button, .filters label, .syntax summary, h2.day, article.card .title a, \
             article.card time, .who, .who a, .kind, .env, .has-diff, .tags a, .links a",
        ),
        (
            format!("/events/{}", ids.last().unwrap()),
            ".event h1, .event time, .facts dt, .facts dd, .description p, .description code, \
             .diff summary span, .diff td, .attributes pre, .around li, .around a, .offset",
        ),
        (
            "/stats".to_owned(),
            ".range-note, .chart h2, .legend li, .bars a, .count",
        ),
        (
            "/correlate?a=kind:deploy&b=kind:incident&window=1h".to_owned(),
            ".correlate label, .correlate button, .verdict-text, .facts dt, .facts dd, .method, \
             .matches a, .matches .system, .matches .offset, .none",
        ),
    ];
    for scheme in ["light", "dark"] {
        browser.set_color_scheme(scheme).await;
        for (path, selectors) in &pages {
            open(&browser, &server, path).await;
            let answer = browser.js(measure, vec![json!(selectors)]).await;
            assert!(
                answer[0].as_u64().unwrap() >= 5,
                "{scheme} {path}: too few elements checked: {answer}"
            );
            assert_eq!(
                answer[1],
                json!([]),
                "{scheme} {path}: text below 4.5:1 contrast"
            );
        }
    }
    browser.close().await;
}

/// Markup and script in every user-supplied field are shown as text and never run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_content_is_rendered_inert() {
    let Some(tools) = webdriver::tools_or_skip() else {
        return;
    };
    let server = Server::start().await;
    let payload = "<script>window.tfrPwned=1</script><img src=x onerror=\"window.tfrPwned=2\">";
    let title = format!("Deploy {payload} \"quoted\" & 'single' </h1>");
    let system = "<b onmouseover=\"window.tfrPwned=3\">sys</b>";
    let author = "<svg onload=window.tfrPwned=4>";
    let tag = "\"><script>window.tfrPwned=5</script>";
    let link_url = "https://evil.example.com/\"><img/src=x/onerror=window.tfrPwned=6>";
    let link_title = "<a href=\"javascript:window.tfrPwned=7\">click</a>";
    let description = "# Heading\n\n\
        <script>window.tfrPwned=8</script>\n\n\
        <img src=x onerror=\"window.tfrPwned=9\">\n\n\
        [click me](javascript:window.tfrPwned=10) [data](data:text/html,<script>window.tfrPwned=11</script>) \
        <javascript:window.tfrPwned=12>\n\n\
        ![pic](javascript:window.tfrPwned=13)\n\n\
        <iframe src=\"javascript:window.tfrPwned=14\"></iframe><style>body{display:none}</style>\n\n\
        <a href=\"javascript:window.tfrPwned=15\" onclick=\"window.tfrPwned=16\">raw link</a>";
    let diff = "--- a/<script>x</script>.html\n+++ b/<script>x</script>.html\n@@ -1 +1 @@\n\
        -<script>window.tfrPwned=17</script>\n\
        +<img src=x onerror=\"window.tfrPwned=18\">\n";
    let attributes = json!({"</pre><script>window.tfrPwned=19</script>": "<img src=x onerror=window.tfrPwned=20>"});
    let now = Timestamp::now();
    let hostile = json!({
        "occurred_at": ago(now, 2),
        "title": title, "system": system, "author": author, "kind": "deploy",
        "environment": "<i>prod</i>", "team": "<u>team</u>", "version": "<s>1</s>",
        "source": "<marquee>src</marquee>",
        "tags": [tag, "<b>bold</b>"],
        "links": [{"url": link_url, "title": link_title}, {"url": "https://ok.example.com/a?b=<c>"}],
        "description": description, "diff": diff, "attributes": attributes,
    });
    let id = server.post_one(&hostile).await;
    server
        .post_one(&json!({"occurred_at": ago(now, 10), "title": "A neighbour", "system": system, "author": author, "kind": "incident"}))
        .await;
    let browser = Browser::start(&tools, &Options::default()).await;

    let inert = "const own = Array.from(document.scripts, (s) => s.getAttribute('src'));
        const handlers = Array.from(document.querySelectorAll('*')).filter(
          (e) => Array.from(e.attributes).some((a) => a.name.toLowerCase().startsWith('on')));
        const badLinks = Array.from(document.querySelectorAll('a[href], area[href]')).filter(
          (a) => !['http:', 'https:', 'mailto:'].includes(a.protocol));
        const svgs = Array.from(document.querySelectorAll('svg')).filter(
          (s) => !s.matches('svg.bars-chart, svg.heat-map'));
        return {
          scripts: own,
          handlers: handlers.map((e) => e.outerHTML.slice(0, 80)),
          bad_links: badLinks.map((a) => a.getAttribute('href')),
          foreign: Array.from(document.querySelectorAll(
            'img, iframe, object, embed, style, base, marquee, frame, main b, main i, main u, main s, main h1 a'),
            (e) => e.outerHTML.slice(0, 80)),
          stray_svg: svgs.length,
          pwned: window.tfrPwned === undefined ? null : window.tfrPwned,
          title: document.title,
        };";
    let check = |page: &'static str, answer: Value| {
        assert_eq!(
            answer["scripts"],
            json!(["/static/app.js"]),
            "{page}: only the page's own script"
        );
        assert_eq!(answer["handlers"], json!([]), "{page}: event handlers");
        assert_eq!(answer["bad_links"], json!([]), "{page}: non-http links");
        assert_eq!(answer["foreign"], json!([]), "{page}: injected elements");
        assert_eq!(answer["stray_svg"], json!(0), "{page}: injected SVG");
        assert_eq!(answer["pwned"], Value::Null, "{page}: injected code ran");
    };

    open(&browser, &server, "/").await;
    check("feed", browser.eval(inert).await);
    let card = format!("article.card[data-id='{id}']");
    assert_eq!(
        texts(&browser, &format!("{card} h3")).await,
        [title.as_str()]
    );
    assert_eq!(
        texts(&browser, &format!("{card} .tags li")).await,
        [tag, "<b>bold</b>"]
    );
    assert_eq!(
        texts(&browser, &format!("{card} .env")).await,
        ["<i>prod</i>"]
    );
    let link = browser
        .eval(&format!(
            "const a = document.querySelector(\"{card} .links a\"); return [a.textContent, a.getAttribute('href')];"
        ))
        .await;
    assert_eq!(link, json!([link_title, link_url]));
    let who = texts(&browser, &format!("{card} .who")).await;
    assert!(
        who[0].contains(system) && who[0].contains(author) && who[0].contains("<u>team</u>"),
        "{who:?}"
    );

    open(&browser, &server, &format!("/events/{id}")).await;
    check("event", browser.eval(inert).await);
    assert_eq!(texts(&browser, ".event > h1").await, [title.as_str()]);
    assert!(
        browser
            .eval("return document.title;")
            .await
            .as_str()
            .unwrap()
            .starts_with(&title),
        "the page title shows the title as text"
    );
    let description_text = texts(&browser, ".description").await.join("\n");
    for shown in [
        "<script>window.tfrPwned=8</script>",
        "<img src=x onerror=\"window.tfrPwned=9\">",
        "<style>body{display:none}</style>",
    ] {
        assert!(
            description_text.contains(shown),
            "the description shows {shown:?} as text: {description_text}"
        );
    }
    assert_eq!(
        texts(&browser, ".description h1").await,
        ["Heading"],
        "Markdown still works"
    );
    let code = texts(&browser, ".diff td.code").await;
    assert_eq!(
        code,
        [
            "-<script>window.tfrPwned=17</script>",
            "+<img src=x onerror=\"window.tfrPwned=18\">"
        ]
    );
    assert_eq!(
        texts(&browser, ".diff .path").await,
        ["<script>x</script>.html"]
    );
    assert!(
        texts(&browser, ".attributes pre").await[0]
            .contains("</pre><script>window.tfrPwned=19</script>"),
        "attributes shown as text"
    );
    let facts = texts(&browser, ".event .facts dd").await;
    assert!(
        facts.contains(&system.to_owned())
            && facts.contains(&"<marquee>src</marquee>".to_owned())
            && facts.contains(&"<s>1</s>".to_owned()),
        "{facts:?}"
    );
    assert!(
        texts(&browser, ".around li")
            .await
            .iter()
            .any(|t| t.contains("A neighbour") && t.contains(system)),
        "around this time"
    );

    open(&browser, &server, "/stats").await;
    check("stats", browser.eval(inert).await);
    assert!(
        texts(&browser, "#top-system ~ ol.bars li a")
            .await
            .contains(&system.to_owned())
    );
    assert!(
        texts(&browser, "#top-author ~ ol.bars li a")
            .await
            .contains(&author.to_owned())
    );

    open(
        &browser,
        &server,
        "/correlate?a=kind:deploy&b=kind:incident&window=1h",
    )
    .await;
    check("correlate", browser.eval(inert).await);

    // A hostile query echoed in the search box and in the error message stays text.
    let query = "\"><script>window.tfrPwned=21</script> system:(";
    let path = format!(
        "/?q={}",
        form_urlencoded::byte_serialize(query.as_bytes()).collect::<String>()
    );
    browser.goto(&server.url(&path)).await;
    browser
        .wait_for(
            "the search page",
            "return document.documentElement.dataset.js === 'ready';",
            WAIT,
        )
        .await;
    // The query is bad (`system:(`): the page is a 400, which the console reports. Nothing else.
    let console: Vec<Value> = browser
        .console()
        .await
        .into_iter()
        .filter(|entry| {
            !entry["message"]
                .as_str()
                .unwrap_or_default()
                .contains("status of 400")
        })
        .collect();
    assert_eq!(
        console,
        Vec::<Value>::new(),
        "a hostile search: the console"
    );
    check("a hostile search", browser.eval(inert).await);
    assert!(
        count(&browser, ".search .error").await == 1,
        "the query's error is shown"
    );
    assert_eq!(
        browser
            .eval("return document.getElementById('q').value;")
            .await,
        json!(query)
    );
    browser.close().await;
}

/// Saves the README's screenshots (see the module's documentation). Ignored by default: it
/// needs the `tfr` binary for `tfr demo`, and rewrites files in the repository.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "writes docs/screenshots; run with --ignored after cargo build -p tfr"]
async fn screenshots() {
    let Some(tools) = webdriver::tools_or_skip() else {
        return;
    };
    let tfr = std::env::var_os("TFR_BIN")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| {
            // target/debug/deps/browser-… → target/debug/tfr
            let exe = std::env::current_exe().unwrap();
            exe.parent().unwrap().parent().unwrap().join("tfr")
        });
    assert!(
        tfr.is_file(),
        "{} not found: run `cargo build -p tfr` first (or set TFR_BIN)",
        tfr.display()
    );
    let out_dir = std::env::var_os("TFR_SCREENSHOT_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| {
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/screenshots")
        });
    std::fs::create_dir_all(&out_dir).unwrap();
    let scheme = std::env::var("TFR_SCREENSHOT_SCHEME").unwrap_or_else(|_| "light".to_owned());

    let server = Server::start().await;
    let demo = tokio::process::Command::new(&tfr)
        .args(["demo", "--server", &server.base])
        .env_remove("TFR_CONFIG")
        .env_remove("TFR_TOKEN")
        .output()
        .await
        .unwrap();
    assert!(
        demo.status.success(),
        "tfr demo: {}",
        String::from_utf8_lossy(&demo.stderr)
    );
    // The event shown: a recent change with a description and a diff of some length.
    let list: Value = server
        .client
        .get(server.url("/api/v1/events?limit=500"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mut best: Option<(usize, String)> = None;
    for summary in list["events"].as_array().unwrap() {
        if summary["has_diff"] != json!(true) {
            continue;
        }
        let id = summary["id"].as_str().unwrap();
        let event: Value = server
            .client
            .get(server.url(&format!("/api/v1/events/{id}")))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let lines = event["diff"].as_str().unwrap_or_default().lines().count();
        let described = event["description"].is_string();
        if described && lines <= 40 && best.as_ref().is_none_or(|(most, _)| lines > *most) {
            best = Some((lines, id.to_owned()));
        }
        if lines >= 10 && described {
            break;
        }
    }
    let event_id = best
        .unwrap_or_else(|| panic!("no demo event with a diff"))
        .1;

    let browser = Browser::start(&tools, &Options::default()).await;
    browser.set_color_scheme(&scheme).await;
    let suffix = if scheme == "light" {
        String::new()
    } else {
        format!("-{scheme}")
    };
    for (device, width, height, scale) in [("desktop", 1280, 860, 1.0), ("phone", 375, 760, 2.0)] {
        browser.set_viewport(width, height, scale).await;
        for (page, path) in [
            ("feed", "/".to_owned()),
            ("event", format!("/events/{event_id}")),
            ("stats", "/stats".to_owned()),
        ] {
            open(&browser, &server, &path).await;
            if page == "stats" {
                browser
                    .wait_for(
                        "stats in the viewer's zone",
                        "return location.search.includes('tz=') || Intl.DateTimeFormat().resolvedOptions().timeZone === 'UTC';",
                        WAIT,
                    )
                    .await;
            }
            assert_no_horizontal_scroll(&browser, width, &path).await;
            // A phone's screen is short: show each page down to 1200 px (the event's diff is
            // below its facts).
            let png = if device == "phone" {
                browser.screenshot_page(1200).await
            } else {
                browser.screenshot().await
            };
            assert!(
                png.len() < 300 * 1024,
                "{page}-{device}: {} KB; keep screenshots under 300 KB",
                png.len() / 1024
            );
            let file = out_dir.join(format!("{page}-{device}{suffix}.png"));
            std::fs::write(&file, &png).unwrap();
            eprintln!("{}: {} KB", file.display(), png.len() / 1024);
        }
    }
    browser.close().await;
}
