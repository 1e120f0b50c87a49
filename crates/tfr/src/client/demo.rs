//! `tfr demo`: fill a server with a realistic, deterministic history, so the feed, the
//! search and the statistics can be tried (and shown) before real facts flow in.
//!
//! The history is produced by [`generate`], a pure function of a seed and an anchor instant:
//! about twenty systems of a video platform with skewed popularity, six teams, fifteen people
//! and three bots, versions that move forward through staging to production, A/B tests that
//! end, working hours and quiet weekends. Each event's idempotency key is
//! `demo:<seed>:<anchor date>:<index>`, so running the demo twice the same day adds nothing.

use std::process::ExitCode;

use clap::Args;
use jiff::Timestamp;
use serde_json::{Map, Value, json};

use super::ClientOptions;
use super::http::Api;
use super::import::{Batch, Tally};

/// Events per bulk request.
const DEMO_BATCH: usize = 500;

const SECONDS_PER_DAY: i64 = 86_400;

/// Flags of `tfr demo`.
#[derive(Args, Clone, Debug)]
pub struct DemoArgs {
    /// Number of events to generate.
    #[arg(long, value_name = "N", default_value_t = 1500)]
    pub events: usize,

    /// Spread the events over this many days before today (UTC).
    #[arg(long, value_name = "D", default_value_t = 60, value_parser = clap::value_parser!(u32).range(1..=3650))]
    pub days: u32,

    /// Seed of the generator: the same seed on the same day gives the same history.
    #[arg(long, value_name = "S", default_value_t = 42)]
    pub seed: u64,
}

/// Runs `tfr demo`: generates the history and sends it through the bulk endpoint.
pub async fn run(args: DemoArgs, options: &ClientOptions) -> anyhow::Result<ExitCode> {
    let anchor = start_of_day(tfr_core::time::now());
    let events = generate(args.seed, args.events, anchor, args.days);
    let api = Api::new(options)?;
    let mut tally = Tally::default();
    for (chunk_index, chunk) in events.chunks(DEMO_BATCH).enumerate() {
        let mut batch = Batch::default();
        for (offset, event) in chunk.iter().enumerate() {
            if let Value::Object(object) = event {
                let number = chunk_index * DEMO_BATCH + offset + 1;
                batch.push(number as u64, object)?;
            }
        }
        let report = api.post_bulk(batch.body()).await?;
        tally.add_report(report, &batch);
    }
    println!(
        "demo: {} created, {} already present",
        tally.created, tally.duplicates
    );
    if tally.error_count == 0 {
        return Ok(ExitCode::SUCCESS);
    }
    eprintln!("demo: {} events refused:", tally.error_count);
    for error in tally.errors.iter().take(20) {
        // The "line" of a demo batch is the event's 1-based index in the history.
        let field = error
            .field
            .as_deref()
            .map(|f| format!("{f}: "))
            .unwrap_or_default();
        eprintln!("event {}: {field}{}", error.line, error.message);
    }
    Ok(ExitCode::FAILURE)
}

/// Midnight UTC of the day of `now`: the demo's anchor, so its events end just before today
/// and look fresh, and so the idempotency keys are the same all day.
pub fn start_of_day(now: Timestamp) -> Timestamp {
    let midnight = now.as_second().div_euclid(SECONDS_PER_DAY) * SECONDS_PER_DAY;
    Timestamp::from_second(midnight).unwrap_or(now)
}

/// A small deterministic pseudo-random generator (SplitMix64): the demo must produce the same
/// history from the same seed on every machine, and needs nothing stronger.
#[derive(Clone, Debug)]
pub struct Rng {
    state: u64,
}

impl Rng {
    /// A generator whose whole sequence is fixed by `seed`.
    pub fn new(seed: u64) -> Self {
        Self { state: seed }
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A float in `[0, 1)`.
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// An integer in `[0, n)`; 0 when `n` is 0.
    pub fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }

    /// An integer in `[low, high]`.
    pub fn range(&mut self, low: u64, high: u64) -> u64 {
        low + self.below(high.saturating_sub(low) + 1)
    }

    /// True with probability `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        self.next_f64() < p
    }

    /// One item of a constant, non-empty table.
    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        let index = self.below(items.len() as u64) as usize;
        items[index.min(items.len().saturating_sub(1))]
    }

    /// One item of a constant, non-empty table of `(item, weight)`.
    fn weighted<T: Copy>(&mut self, items: &[(T, u32)]) -> T {
        let total: u64 = items.iter().map(|(_, weight)| u64::from(*weight)).sum();
        let mut roll = self.below(total);
        for (item, weight) in items {
            if roll < u64::from(*weight) {
                return *item;
            }
            roll -= u64::from(*weight);
        }
        items[items.len().saturating_sub(1)].0
    }

    fn hex(&mut self, digits: usize) -> String {
        (0..digits)
            .map(|_| char::from(b"0123456789abcdef"[self.below(16) as usize]))
            .collect()
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Class {
    /// A service teams deploy, flag and experiment on.
    App,
    /// A piece of infrastructure: upgraded, scaled, patched.
    Infra,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Versioning {
    Semver(u32, u32),
    Sha,
}

#[derive(Clone, Copy, Debug)]
struct System {
    name: &'static str,
    team: &'static str,
    weight: u32,
    class: Class,
    versioning: Versioning,
    /// Tables its migrations touch; none means no schema changes.
    tables: &'static [&'static str],
    /// Experiments it runs; none means no A/B tests.
    experiments: &'static [&'static str],
    language: Language,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Language {
    TypeScript,
    Go,
    Python,
    None,
}

const SYSTEMS: &[System] = &[
    System {
        name: "player",
        team: "video",
        weight: 16,
        class: Class::App,
        versioning: Versioning::Semver(5, 1),
        tables: &[],
        experiments: &[
            "new-player-controls",
            "thumbnail-autoplay",
            "adaptive-start-bitrate",
        ],
        language: Language::TypeScript,
    },
    System {
        name: "api-gateway",
        team: "platform",
        weight: 11,
        class: Class::App,
        versioning: Versioning::Semver(2, 14),
        tables: &[],
        experiments: &[],
        language: Language::Go,
    },
    System {
        name: "search",
        team: "data",
        weight: 9,
        class: Class::App,
        versioning: Versioning::Sha,
        tables: &[],
        experiments: &["search-typo-tolerance", "semantic-search"],
        language: Language::Python,
    },
    System {
        name: "recommendations",
        team: "data",
        weight: 8,
        class: Class::App,
        versioning: Versioning::Semver(3, 8),
        tables: &["recommendation_feedback"],
        experiments: &["ranking-model-v7", "diversity-boost"],
        language: Language::Python,
    },
    System {
        name: "web-frontend",
        team: "web",
        weight: 8,
        class: Class::App,
        versioning: Versioning::Sha,
        tables: &[],
        experiments: &["homepage-hero-v2", "paywall-copy-2"],
        language: Language::TypeScript,
    },
    System {
        name: "cdn-edge",
        team: "sre",
        weight: 7,
        class: Class::Infra,
        versioning: Versioning::Semver(1, 31),
        tables: &[],
        experiments: &[],
        language: Language::None,
    },
    System {
        name: "auth",
        team: "platform",
        weight: 6,
        class: Class::App,
        versioning: Versioning::Semver(1, 22),
        tables: &["users", "sessions", "oauth_clients"],
        experiments: &[],
        language: Language::Go,
    },
    System {
        name: "mobile-api",
        team: "mobile",
        weight: 6,
        class: Class::App,
        versioning: Versioning::Semver(6, 2),
        tables: &["devices"],
        experiments: &["onboarding-steps-3"],
        language: Language::Go,
    },
    System {
        name: "transcoder",
        team: "video",
        weight: 5,
        class: Class::App,
        versioning: Versioning::Semver(1, 9),
        tables: &["transcode_jobs"],
        experiments: &[],
        language: Language::Go,
    },
    System {
        name: "billing",
        team: "platform",
        weight: 4,
        class: Class::App,
        versioning: Versioning::Semver(4, 3),
        tables: &["invoices", "subscriptions", "payments"],
        experiments: &[],
        language: Language::Go,
    },
    System {
        name: "upload",
        team: "video",
        weight: 4,
        class: Class::App,
        versioning: Versioning::Semver(2, 7),
        tables: &["videos", "upload_parts"],
        experiments: &[],
        language: Language::Go,
    },
    System {
        name: "ads",
        team: "web",
        weight: 4,
        class: Class::App,
        versioning: Versioning::Sha,
        tables: &["ad_campaigns"],
        experiments: &["ad-frequency-cap"],
        language: Language::TypeScript,
    },
    System {
        name: "notifications",
        team: "mobile",
        weight: 3,
        class: Class::App,
        versioning: Versioning::Sha,
        tables: &["push_tokens"],
        experiments: &[],
        language: Language::Go,
    },
    System {
        name: "analytics-pipeline",
        team: "data",
        weight: 3,
        class: Class::App,
        versioning: Versioning::Sha,
        tables: &["events_daily"],
        experiments: &[],
        language: Language::Python,
    },
    System {
        name: "postgres-main",
        team: "sre",
        weight: 3,
        class: Class::Infra,
        versioning: Versioning::Semver(16, 4),
        tables: &["videos", "users", "comments", "playlists", "watch_history"],
        experiments: &[],
        language: Language::None,
    },
    System {
        name: "k8s-cluster",
        team: "sre",
        weight: 3,
        class: Class::Infra,
        versioning: Versioning::Semver(1, 30),
        tables: &[],
        experiments: &[],
        language: Language::None,
    },
    System {
        name: "kafka",
        team: "sre",
        weight: 2,
        class: Class::Infra,
        versioning: Versioning::Semver(3, 7),
        tables: &[],
        experiments: &[],
        language: Language::None,
    },
    System {
        name: "redis-cache",
        team: "sre",
        weight: 2,
        class: Class::Infra,
        versioning: Versioning::Semver(7, 2),
        tables: &[],
        experiments: &[],
        language: Language::None,
    },
    System {
        name: "ci-runners",
        team: "platform",
        weight: 2,
        class: Class::Infra,
        versioning: Versioning::Sha,
        tables: &[],
        experiments: &[],
        language: Language::None,
    },
    System {
        name: "feature-flags",
        team: "platform",
        weight: 2,
        class: Class::App,
        versioning: Versioning::Semver(0, 19),
        tables: &[],
        experiments: &[],
        language: Language::Go,
    },
];

const TEAMS: &[(&str, &[&str])] = &[
    ("video", &["alice", "bob", "chloe"]),
    ("platform", &["david", "emma", "farid"]),
    ("data", &["giulia", "hugo"]),
    ("web", &["ines", "jonas"]),
    ("mobile", &["karim", "lea"]),
    ("sre", &["marco", "nadia", "olivier"]),
];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Deploy,
    Config,
    Schema,
    AbTest,
    FeatureFlag,
    OsUpdate,
    Infra,
    Release,
}

impl Kind {
    fn slug(self) -> &'static str {
        match self {
            Self::Deploy => "deploy",
            Self::Config => "config",
            Self::Schema => "schema",
            Self::AbTest => "ab_test",
            Self::FeatureFlag => "feature_flag",
            Self::OsUpdate => "os_update",
            Self::Infra => "infra",
            Self::Release => "release",
        }
    }
}

const APP_KINDS: &[(Kind, u32)] = &[
    (Kind::Deploy, 46),
    (Kind::Config, 14),
    (Kind::FeatureFlag, 10),
    (Kind::AbTest, 5),
    (Kind::Release, 3),
    (Kind::Schema, 6),
    (Kind::Infra, 6),
    (Kind::OsUpdate, 6),
];

const INFRA_KINDS: &[(Kind, u32)] = &[
    (Kind::Infra, 34),
    (Kind::OsUpdate, 24),
    (Kind::Config, 24),
    (Kind::Deploy, 10),
    (Kind::Schema, 8),
];

/// The feature flags a system has, so a flag is only ever toggled where it makes sense.
fn flags_for(system: &str) -> &'static [&'static str] {
    match system {
        "player" => &[
            "new-player-controls",
            "hls-low-latency",
            "picture-in-picture",
            "autoplay-next",
        ],
        "web-frontend" => &["dark-mode", "new-onboarding", "instant-search-box"],
        "api-gateway" => &["http3", "strict-cors", "request-hedging"],
        "auth" => &["passkeys", "sso-google", "short-lived-tokens"],
        "billing" => &["one-click-checkout", "annual-plans", "sca-exemptions"],
        "transcoder" => &["ai-captions", "av1-encoding"],
        "upload" => &["resumable-uploads", "parallel-chunks"],
        "search" => &["instant-search", "spelling-suggestions"],
        "recommendations" => &["ranking-v7-shadow", "fresh-content-boost"],
        "ads" => &["server-side-ads", "frequency-capping"],
        "mobile-api" => &["offline-playlists", "smart-downloads"],
        "notifications" => &["digest-emails", "quiet-hours"],
        "analytics-pipeline" => &["late-events-backfill", "exactly-once-sink"],
        _ => &["audit-log", "maintenance-banner"],
    }
}

const COLUMNS: &[&str] = &[
    "owner_id",
    "created_at",
    "status",
    "updated_at",
    "region",
    "deleted_at",
    "external_id",
    "locale",
];

const CHANGES: &[&str] = &[
    "Faster startup on low-end devices",
    "Fix race in session refresh",
    "Retry failed segment downloads",
    "Reduce memory use of the cache",
    "Add metrics for queue depth",
    "Drop support for TLS 1.1",
    "Fix crash when the playlist is empty",
    "Better error messages on upload failure",
    "Batch writes to the events table",
    "Honour Retry-After from upstreams",
    "Log slow requests with their trace id",
    "Remove the legacy v1 endpoints",
];

const REGIONS: &[&str] = &["eu-west-1", "us-east-1", "ap-southeast-1"];
const INSTANCE_TYPES: &[&str] = &[
    "m7g.xlarge",
    "m7g.2xlarge",
    "c7g.2xlarge",
    "r7g.xlarge",
    "r7g.2xlarge",
];
const METRICS: &[&str] = &[
    "watch_time",
    "play_starts",
    "ctr",
    "conversion",
    "retention_d7",
];
const CONSTANTS: &[&str] = &[
    "max_retries",
    "batch_size",
    "prefetch_segments",
    "idle_timeout_seconds",
    "max_concurrency",
];

/// Where a system's versions stand, so deploys move forward and reach production after
/// staging, as they do on a real platform.
#[derive(Clone, Debug)]
struct VersionState {
    major: u32,
    minor: u32,
    patch: u32,
    /// Built and on staging, not yet in production.
    on_staging: Option<String>,
    in_production: Option<String>,
    previous_in_production: Option<String>,
}

/// Generates `count` events spread over the `days` days before `anchor`, oldest first.
/// Deterministic: the same `seed` and `anchor` give the same events, field for field.
/// Every event passes the server's validation.
pub fn generate(seed: u64, count: usize, anchor: Timestamp, days: u32) -> Vec<Value> {
    let mut generator = Generator::new(seed, anchor, days);
    let mut times: Vec<i64> = (0..count).map(|_| generator.instant()).collect();
    times.sort_unstable();
    let date = anchor.strftime("%Y-%m-%d").to_string();
    times
        .into_iter()
        .enumerate()
        .map(|(index, second)| {
            let mut event = generator.event(second);
            event.insert(
                "idempotency_key".to_owned(),
                json!(format!("demo:{seed}:{date}:{index}")),
            );
            Value::Object(event)
        })
        .collect()
}

struct Generator {
    rng: Rng,
    start: i64,
    span: i64,
    anchor: i64,
    versions: Vec<VersionState>,
}

impl Generator {
    fn new(seed: u64, anchor: Timestamp, days: u32) -> Self {
        let span = i64::from(days.max(1)) * SECONDS_PER_DAY;
        let versions = SYSTEMS
            .iter()
            .map(|system| {
                let (major, minor) = match system.versioning {
                    Versioning::Semver(major, minor) => (major, minor),
                    Versioning::Sha => (0, 0),
                };
                VersionState {
                    major,
                    minor,
                    patch: 0,
                    on_staging: None,
                    in_production: None,
                    previous_in_production: None,
                }
            })
            .collect();
        Self {
            rng: Rng::new(seed),
            start: anchor.as_second() - span,
            span,
            anchor: anchor.as_second(),
            versions,
        }
    }

    /// A moment in the range, weighted towards working hours on weekdays (UTC).
    fn instant(&mut self) -> i64 {
        let mut second = self.start;
        for _ in 0..64 {
            second = self.start + self.rng.below(self.span as u64) as i64;
            let day = second.div_euclid(SECONDS_PER_DAY);
            // 1970-01-01 was a Thursday: shift so that Monday is 0.
            let weekday = (day + 3).rem_euclid(7);
            let hour = second.rem_euclid(SECONDS_PER_DAY) / 3_600;
            let day_weight = if weekday >= 5 { 0.2 } else { 1.0 };
            let hour_weight = match hour {
                8..=17 => 1.0,
                7 | 18..=19 => 0.4,
                _ => 0.06,
            };
            if self.rng.chance(day_weight * hour_weight) {
                break;
            }
        }
        second
    }

    /// How far through the history `second` lies, in `[0, 1)`: package versions and the
    /// like grow with it.
    fn progress(&self, second: i64) -> f64 {
        (second - self.start) as f64 / self.span as f64
    }

    fn human(&mut self, team: &str) -> &'static str {
        let own = TEAMS
            .iter()
            .find(|(name, _)| *name == team)
            .map(|(_, people)| *people);
        match own {
            Some(people) if !self.rng.chance(0.15) => self.rng.pick(people),
            _ => {
                let (_, people) = self.rng.pick(TEAMS);
                self.rng.pick(people)
            }
        }
    }

    fn human_source(&mut self) -> &'static str {
        if self.rng.chance(0.8) {
            "cli"
        } else {
            "jenkins"
        }
    }

    fn event(&mut self, second: i64) -> Map<String, Value> {
        let system_index = self.rng.weighted(
            &SYSTEMS
                .iter()
                .enumerate()
                .map(|(index, system)| (index, system.weight))
                .collect::<Vec<_>>(),
        );
        let system = SYSTEMS[system_index];
        let mut kind = match system.class {
            Class::App => self.rng.weighted(APP_KINDS),
            Class::Infra => self.rng.weighted(INFRA_KINDS),
        };
        if kind == Kind::AbTest && system.experiments.is_empty() {
            kind = Kind::FeatureFlag;
        }
        if kind == Kind::Schema && system.tables.is_empty() {
            kind = Kind::Config;
        }
        if kind == Kind::Release && system.versioning == Versioning::Sha {
            kind = Kind::Deploy;
        }

        let mut draft = Draft::new(system, kind, second);
        match kind {
            Kind::Deploy => self.deploy(&mut draft, system_index),
            Kind::Release => self.release(&mut draft, system_index),
            Kind::Config => self.config(&mut draft),
            Kind::Schema => self.schema(&mut draft),
            Kind::AbTest => self.ab_test(&mut draft),
            Kind::FeatureFlag => self.feature_flag(&mut draft),
            Kind::OsUpdate => self.os_update(&mut draft),
            Kind::Infra => self.infra(&mut draft),
        }
        if draft.author.is_empty() {
            draft.author = self.human(system.team).to_owned();
            draft.source = self.human_source().to_owned();
        }
        if self.rng.chance(0.35) {
            let prefix = match system.team {
                "video" => "VID",
                "platform" => "PLT",
                "data" => "DATA",
                "web" => "WEB",
                "mobile" => "MOB",
                _ => "OPS",
            };
            let ticket = format!("{prefix}-{}", self.rng.range(1000, 4999));
            draft.tags.push(format!("ticket:{ticket}"));
            draft.links.push(json!({
                "url": format!("https://tickets.example.com/browse/{ticket}"),
                "title": ticket,
            }));
        }
        if draft.links.is_empty() && self.rng.chance(0.2) {
            let build = self.rng.range(1000, 99_999);
            draft.links.push(json!({
                "url": format!("https://ci.example.com/{}/{}/builds/{build}", system.team, system.name),
                "title": format!("Build #{build}"),
            }));
        }
        if !draft.diff_ready.is_empty() && self.rng.chance(0.09) {
            draft.diff = Some(std::mem::take(&mut draft.diff_ready));
        }
        if !self.rng.chance(0.3) {
            draft.description = None;
        }
        if !self.rng.chance(0.55) {
            draft.attributes.clear();
        }
        draft.finish()
    }

    fn next_version(&mut self, system_index: usize, minor_bump: bool) -> String {
        let system = SYSTEMS[system_index];
        if system.versioning == Versioning::Sha {
            return self.rng.hex(7);
        }
        let Some(state) = self.versions.get_mut(system_index) else {
            return self.rng.hex(7);
        };
        if minor_bump {
            state.minor += 1;
            state.patch = 0;
        } else {
            state.patch += 1;
        }
        format!("{}.{}.{}", state.major, state.minor, state.patch)
    }

    fn deploy(&mut self, draft: &mut Draft, system_index: usize) {
        let system = draft.system;
        let (bot, source) = match system.class {
            Class::App => self.rng.pick(&[
                (Some("github-actions"), "github"),
                (Some("github-actions"), "github"),
                (Some("argo-cd"), "argo-cd"),
                (None, ""),
                (None, ""),
            ]),
            Class::Infra => self.rng.pick(&[(Some("ansible"), "ansible"), (None, "")]),
        };
        if let Some(bot) = bot {
            draft.author = bot.to_owned();
            draft.source = source.to_owned();
        }
        let state = self.versions[system_index].clone();
        let roll = self.rng.next_f64();
        let (environment, version, rollback) =
            match (&state.on_staging, &state.previous_in_production) {
                (_, Some(previous)) if roll < 0.03 => ("production", previous.clone(), true),
                (Some(staged), _) if roll < 0.8 => ("production", staged.clone(), false),
                _ if roll < 0.85 => {
                    let hotfix = self.next_version(system_index, false);
                    ("production", hotfix, false)
                }
                _ => {
                    // Minor versions move with releases; builds in between are patches.
                    let built = self.next_version(system_index, false);
                    ("staging", built, false)
                }
            };
        let state = &mut self.versions[system_index];
        if environment == "production" {
            if state.on_staging.as_deref() == Some(version.as_str()) {
                state.on_staging = None;
            }
            state.previous_in_production = state.in_production.replace(version.clone());
        } else {
            state.on_staging = Some(version.clone());
        }

        draft.environment = Some(environment);
        draft.title = if rollback {
            draft.tags.push("rollback".to_owned());
            format!("Roll back {} to {version} in {environment}", system.name)
        } else {
            format!("Deploy {} {version} to {environment}", system.name)
        };
        if let Some(tag) = release_tag(&version) {
            draft.tags.push(tag);
        }
        if environment == "production" && !rollback && self.rng.chance(0.2) {
            draft.tags.push("strategy:canary".to_owned());
        }
        if draft.source == "github" || self.rng.chance(0.4) {
            let pipeline = self.rng.range(10_000, 99_999);
            draft.links.push(json!({
                "url": format!("https://ci.example.com/{}/{}/pipelines/{pipeline}", system.team, system.name),
                "title": format!("Pipeline #{pipeline}"),
            }));
        }
        let first = self.rng.pick(CHANGES);
        let second = self.rng.pick(CHANGES);
        draft.description = Some(format!(
            "## Changes\n\n- {first}\n- {second}\n\nRollout: canary at 10% for 30 minutes, then 100%."
        ));
        draft
            .attributes
            .insert("duration_s".to_owned(), json!(self.rng.range(40, 900)));
        draft
            .attributes
            .insert("replicas".to_owned(), json!(self.rng.range(2, 48)));
        draft.version = Some(version);
        draft.diff_ready = self.code_diff(system);
    }

    fn release(&mut self, draft: &mut Draft, system_index: usize) {
        let previous = self.versions[system_index].clone();
        let version = self.next_version(system_index, true);
        if let Some(state) = self.versions.get_mut(system_index) {
            state.on_staging = Some(version.clone());
        }
        let name = draft.system.name;
        draft.title = format!("Release {name} {version}");
        draft.environment = None;
        if let Some(tag) = release_tag(&version) {
            draft.tags.push(tag);
        }
        let changes: Vec<&str> = (0..3).map(|_| self.rng.pick(CHANGES)).collect();
        draft.description = Some(format!(
            "## {name} {version}\n\n- {}\n- {}\n- {}",
            changes[0], changes[1], changes[2]
        ));
        let date = Timestamp::from_second(draft.second)
            .map(|t| t.strftime("%Y-%m-%d").to_string())
            .unwrap_or_default();
        let previous = format!("{}.{}.{}", previous.major, previous.minor, previous.patch);
        draft.diff_ready = format!(
            "--- a/CHANGELOG.md\n+++ b/CHANGELOG.md\n@@ -1,3 +1,8 @@\n # Changelog\n \n+## {version} ({date})\n+\n+- {}\n+- {}\n+\n ## {previous}\n",
            changes[0], changes[1]
        );
        draft.version = Some(version);
    }

    fn config(&mut self, draft: &mut Draft) {
        let system = draft.system;
        let name = system.name;
        if system.class == Class::Infra && self.rng.chance(0.4) {
            draft.author = "ansible".to_owned();
            draft.source = "ansible".to_owned();
        }
        draft.environment = Some(if self.rng.chance(0.7) {
            "production"
        } else {
            "staging"
        });
        let knob = match system.class {
            Class::App => self.rng.below(6),
            Class::Infra => self.rng.pick(&[1u64, 2, 6, 7]),
        };
        let (title, section, key, old, new) = match knob {
            0 => {
                let old = self.rng.range(5, 30) * 100;
                let new = (old / 500 + self.rng.range(1, 3)) * 500;
                (
                    format!("Raise {name} rate limit to {new} rps"),
                    "ratelimit",
                    "requests_per_second",
                    old.to_string(),
                    new.to_string(),
                )
            }
            1 => {
                let old = self.rng.range(10, 40);
                let new = old + self.rng.range(1, 4) * 5;
                (
                    format!("Set {name} connection pool size to {new}"),
                    "database",
                    "pool_size",
                    old.to_string(),
                    new.to_string(),
                )
            }
            2 => {
                let old = self.rng.range(5, 60) * 60;
                let new = old / 2;
                (
                    format!("Lower {name} cache TTL to {new}s"),
                    "cache",
                    "ttl_seconds",
                    old.to_string(),
                    new.to_string(),
                )
            }
            3 => {
                let old = self.rng.range(1, 8) * 4;
                let new = old + 4;
                (
                    format!("Increase {name} worker count to {new}"),
                    "server",
                    "workers",
                    old.to_string(),
                    new.to_string(),
                )
            }
            4 => {
                let old = self.rng.range(2, 10) * 500;
                let new = old + 500;
                (
                    format!("Set {name} request timeout to {new} ms"),
                    "http",
                    "timeout_ms",
                    old.to_string(),
                    new.to_string(),
                )
            }
            5 => {
                let (old, new) =
                    self.rng
                        .pick(&[("info", "debug"), ("debug", "info"), ("info", "warn")]);
                (
                    format!("Switch {name} log level to {new}"),
                    "logging",
                    "level",
                    old.to_owned(),
                    new.to_owned(),
                )
            }
            6 => {
                let old = self.rng.range(2, 10) * 100;
                let new = old + 200;
                (
                    format!("Raise {name} max connections to {new}"),
                    "limits",
                    "max_connections",
                    old.to_string(),
                    new.to_string(),
                )
            }
            _ => {
                let old = self.rng.range(4, 32);
                let new = old * 2;
                (
                    format!("Raise {name} memory limit to {new} GiB"),
                    "resources",
                    "memory_gib",
                    old.to_string(),
                    new.to_string(),
                )
            }
        };
        draft.title = title;
        draft.description = Some(format!(
            "Changed after last week's traffic peak; see the dashboard linked in the ticket.\n\n**Rollback:** set `{section}.{key}` back to `{old}`."
        ));
        draft.attributes.insert("previous".to_owned(), json!(old));
        let line = self.rng.range(8, 60);
        draft.diff_ready = format!(
            "--- a/deploy/{name}/values.yaml\n+++ b/deploy/{name}/values.yaml\n@@ -{line},6 +{line},6 @@\n {section}:\n   enabled: true\n-  {key}: {old}\n+  {key}: {new}\n   # owned by team {team}\n \n metrics:\n",
            team = system.team
        );
    }

    fn schema(&mut self, draft: &mut Draft) {
        let table = self.rng.pick(draft.system.tables);
        let column = self.rng.pick(COLUMNS);
        let column_type = if column.ends_with("_at") {
            "timestamptz"
        } else if column.ends_with("_id") {
            "bigint"
        } else {
            "text"
        };
        let (title, slug, sql): (String, String, Vec<String>) = match self.rng.below(4) {
            0 => (
                format!("Add index on {table}({column})"),
                format!("add_index_{table}_{column}"),
                vec![
                    format!("CREATE INDEX CONCURRENTLY idx_{table}_{column}"),
                    format!("    ON {table} ({column});"),
                ],
            ),
            1 => (
                format!("Add column {table}.{column}"),
                format!("add_{table}_{column}"),
                vec![
                    format!("ALTER TABLE {table}"),
                    format!("    ADD COLUMN {column} {column_type};"),
                ],
            ),
            2 => (
                format!("Drop column {table}.legacy_{column}"),
                format!("drop_{table}_legacy_{column}"),
                vec![format!("ALTER TABLE {table} DROP COLUMN legacy_{column};")],
            ),
            _ => (
                format!("Create table {table}_archive"),
                format!("create_{table}_archive"),
                vec![
                    format!("CREATE TABLE {table}_archive ("),
                    "    id bigint PRIMARY KEY,".to_owned(),
                    "    archived_at timestamptz NOT NULL DEFAULT now(),".to_owned(),
                    "    payload jsonb NOT NULL".to_owned(),
                    ");".to_owned(),
                ],
            ),
        };
        let version = Timestamp::from_second(draft.second)
            .map(|t| t.strftime("%Y%m%d%H%M").to_string())
            .unwrap_or_default();
        draft.environment = Some(if self.rng.chance(0.7) {
            "production"
        } else {
            "staging"
        });
        draft.description = Some(format!(
            "Migration `{version}_{slug}.sql`. Built without locking writes; expected to take about {} minutes.",
            self.rng.range(1, 20)
        ));
        let mut diff = format!(
            "--- /dev/null\n+++ b/migrations/{version}_{slug}.sql\n@@ -0,0 +1,{} @@\n+-- {title}\n",
            sql.len() + 1
        );
        for line in &sql {
            diff.push('+');
            diff.push_str(line);
            diff.push('\n');
        }
        draft.diff_ready = diff;
        draft.title = title;
        draft.version = Some(version);
    }

    fn ab_test(&mut self, draft: &mut Draft) {
        let experiment = self.rng.pick(draft.system.experiments);
        let metric = self.rng.pick(METRICS);
        draft.environment = Some("production");
        draft.tags.push(format!("experiment:{experiment}"));
        draft.links.push(json!({
            "url": format!("https://experiments.example.com/{experiment}"),
            "title": "Experiment dashboard",
        }));
        if self.rng.chance(0.75) {
            let percent = self.rng.pick(&[5, 10, 10, 20, 50]);
            draft.title = format!("Start A/B test {experiment} ({percent}%)");
            let end = draft.second + self.rng.range(3 * 24, 21 * 24) as i64 * 3_600;
            if end < self.anchor {
                draft.ended_at = Some(end);
            }
            draft.description = Some(format!(
                "**Hypothesis:** {experiment} improves {metric}.\n\n| variant | share |\n|---|---|\n| control | {}% |\n| treatment | {percent}% |",
                100 - percent
            ));
            draft
                .attributes
                .insert("traffic_percent".to_owned(), json!(percent));
            draft
                .attributes
                .insert("variants".to_owned(), json!(["control", "treatment"]));
            draft.diff_ready = format!(
                "--- a/experiments/{experiment}.yaml\n+++ b/experiments/{experiment}.yaml\n@@ -1,5 +1,5 @@\n name: {experiment}\n owner: {team}\n-status: draft\n-traffic_percent: 0\n+status: running\n+traffic_percent: {percent}\n metric: {metric}\n",
                team = draft.system.team
            );
        } else {
            let lift = self.rng.range(5, 40);
            draft.title = if self.rng.chance(0.6) {
                format!(
                    "Conclude A/B test {experiment}: treatment wins (+{}.{}% {metric})",
                    lift / 10,
                    lift % 10
                )
            } else {
                format!("Conclude A/B test {experiment}: no significant change, control kept")
            };
        }
    }

    fn feature_flag(&mut self, draft: &mut Draft) {
        let flag = self.rng.pick(flags_for(draft.system.name));
        let environment = if self.rng.chance(0.75) {
            "production"
        } else {
            "staging"
        };
        draft.environment = Some(environment);
        draft.tags.push(format!("flag:{flag}"));
        let (title, old, new) = match self.rng.below(10) {
            0..=4 => {
                let percent = self.rng.pick(&[1, 5, 10, 25, 50]);
                (
                    format!("Enable feature flag {flag} for {percent}% of users"),
                    0,
                    percent,
                )
            }
            5..=7 => (format!("Enable {flag} for all users"), 50, 100),
            8 => (format!("Disable feature flag {flag}"), 100, 0),
            _ => (format!("Remove stale feature flag {flag}"), 100, 100),
        };
        draft.title = title;
        draft
            .attributes
            .insert("rollout_percent".to_owned(), json!(new));
        if old != new {
            draft.diff_ready = format!(
                "--- a/flags/{flag}.yaml\n+++ b/flags/{flag}.yaml\n@@ -1,4 +1,4 @@\n key: {flag}\n owner: {team}\n-rollout_percent: {old}\n+rollout_percent: {new}\n environments: [{environment}]\n",
                team = draft.system.team
            );
        }
    }

    fn os_update(&mut self, draft: &mut Draft) {
        let name = draft.system.name;
        if self.rng.chance(0.7) {
            draft.author = "ansible".to_owned();
            draft.source = "ansible".to_owned();
        }
        draft.environment = Some(if self.rng.chance(0.8) {
            "production"
        } else {
            "staging"
        });
        let step = (self.progress(draft.second) * 8.0) as u64;
        let (title, package, old, new) = match self.rng.below(4) {
            0 => {
                let build = 20 + step + self.rng.below(2);
                (
                    format!("Upgrade kernel to 6.1.0-{build} on {name}"),
                    "kernel",
                    format!("6.1.0-{}", build - 1),
                    format!("6.1.0-{build}"),
                )
            }
            1 => {
                let patch = 13 + step;
                (
                    format!("Update openssl to 3.0.{patch} on {name}"),
                    "openssl",
                    format!("3.0.{}", patch - 1),
                    format!("3.0.{patch}"),
                )
            }
            2 => {
                let point = 7 + step / 3;
                (
                    format!("Apply Debian 12.{point} security updates on {name}"),
                    "debian",
                    format!("12.{}", point - 1),
                    format!("12.{point}"),
                )
            }
            _ => {
                let patch = 1 + step / 2;
                (
                    format!("Upgrade nginx to 1.26.{patch} on {name}"),
                    "nginx",
                    format!("1.26.{}", patch - 1),
                    format!("1.26.{patch}"),
                )
            }
        };
        let hosts = self.rng.range(3, 120);
        let serial = self.rng.range(1, 5);
        draft.title = title;
        draft.version = Some(new.clone());
        if self.rng.chance(0.5) {
            draft
                .tags
                .push(format!("region:{}", self.rng.pick(REGIONS)));
        }
        draft.description = Some(format!(
            "Rolling update, {serial} hosts at a time, each drained from the load balancer first."
        ));
        draft.attributes.insert("hosts".to_owned(), json!(hosts));
        draft.diff_ready = format!(
            "--- a/inventory/group_vars/{name}.yml\n+++ b/inventory/group_vars/{name}.yml\n@@ -3,4 +3,4 @@\n {package}_hold: false\n-{package}_version: \"{old}\"\n+{package}_version: \"{new}\"\n reboot_strategy: rolling\n serial: {serial}\n"
        );
    }

    fn infra(&mut self, draft: &mut Draft) {
        let system = draft.system;
        let name = system.name;
        draft.environment = Some(if self.rng.chance(0.8) {
            "production"
        } else {
            "staging"
        });
        if self.rng.chance(0.5) {
            draft
                .tags
                .push(format!("region:{}", self.rng.pick(REGIONS)));
        }
        let module = name.replace('-', "_");
        let instance = self.rng.pick(INSTANCE_TYPES);
        let operation = match name {
            "k8s-cluster" => self.rng.pick(&[0, 1, 4]),
            "kafka" => self.rng.pick(&[0, 5, 6]),
            "cdn-edge" | "api-gateway" => self.rng.pick(&[0, 2, 3]),
            _ => self.rng.pick(&[0, 0, 1, 2, 3]),
        };
        match operation {
            0 | 1 => {
                let before = self.rng.range(3, 30);
                let after = if operation == 0 || before < 6 {
                    before + self.rng.range(1, 6)
                } else {
                    before - self.rng.range(1, 3)
                };
                draft.title = format!("Scale {name} from {before} to {after} nodes");
                draft.description = Some(format!(
                    "Capacity for the coming weeks: p99 CPU was above 70% at peak with {before} nodes."
                ));
                draft
                    .attributes
                    .insert("nodes_before".to_owned(), json!(before));
                draft
                    .attributes
                    .insert("nodes_after".to_owned(), json!(after));
                draft.diff_ready = format!(
                    "--- a/terraform/{name}/main.tf\n+++ b/terraform/{name}/main.tf\n@@ -12,6 +12,6 @@ module \"{module}\" {{\n   source        = \"../modules/node-group\"\n   instance_type = \"{instance}\"\n-  desired_size  = {before}\n+  desired_size  = {after}\n   min_size      = {}\n   max_size      = {}\n }}\n",
                    before.min(after),
                    before.max(after) * 2
                );
            }
            2 => {
                let old = self.rng.pick(INSTANCE_TYPES);
                draft.title = format!("Move {name} to {instance} instances");
                draft.diff_ready = format!(
                    "--- a/terraform/{name}/main.tf\n+++ b/terraform/{name}/main.tf\n@@ -12,4 +12,4 @@ module \"{module}\" {{\n   source        = \"../modules/node-group\"\n-  instance_type = \"{old}\"\n+  instance_type = \"{instance}\"\n   desired_size  = 6\n }}\n"
                );
            }
            3 => {
                draft.title = format!("Rotate TLS certificates on {name}");
                draft.description = Some(
                    "Certificates renewed 30 days before expiry; no restart needed.".to_owned(),
                );
            }
            4 => {
                let minor = 30 + (self.progress(draft.second) * 2.0) as u64;
                let patch = self.rng.range(1, 9);
                let version = format!("1.{minor}.{patch}");
                draft.title = format!("Upgrade k8s-cluster to {version}");
                draft.version = Some(version);
                draft.description =
                    Some("Control plane first, then node pools one by one.".to_owned());
            }
            5 => {
                let brokers = self.rng.range(1, 3) * 2;
                draft.title = format!("Add {brokers} brokers to kafka");
                draft
                    .attributes
                    .insert("brokers_added".to_owned(), json!(brokers));
            }
            _ => {
                let topic = self.rng.pick(&[
                    "playback-events",
                    "uploads",
                    "billing-events",
                    "search-clicks",
                ]);
                let partitions = self.rng.range(2, 8) * 12;
                draft.title = format!("Increase partitions of topic {topic} to {partitions}");
                draft.tags.push(format!("topic:{topic}"));
            }
        }
    }

    fn code_diff(&mut self, system: System) -> String {
        let constant = self.rng.pick(CONSTANTS);
        let old = self.rng.range(2, 20);
        let new = old + self.rng.range(1, 5);
        let line = self.rng.range(5, 80);
        let name = system.name;
        match system.language {
            Language::TypeScript => {
                let upper = constant.to_uppercase();
                format!(
                    "--- a/src/config.ts\n+++ b/src/config.ts\n@@ -{line},4 +{line},4 @@\n // Tuned for {name} after the last load test.\n-export const {upper} = {old};\n+export const {upper} = {new};\n \n export const DEFAULTS = {{\n"
                )
            }
            Language::Go => {
                let camel = camel_case(constant);
                format!(
                    "--- a/internal/config/defaults.go\n+++ b/internal/config/defaults.go\n@@ -{line},4 +{line},4 @@ const (\n \t// Tuned for {name} after the last load test.\n-\t{camel} = {old}\n+\t{camel} = {new}\n \tdefaultRegion = \"eu-west-1\"\n"
                )
            }
            Language::Python => {
                let upper = constant.to_uppercase();
                format!(
                    "--- a/{module}/settings.py\n+++ b/{module}/settings.py\n@@ -{line},4 +{line},4 @@\n # Tuned after the last load test.\n-{upper} = {old}\n+{upper} = {new}\n \n LOG_LEVEL = \"INFO\"\n",
                    module = name.replace('-', "_")
                )
            }
            Language::None => String::new(),
        }
    }
}

/// `5.2.1` → `release:5.2`; nothing for a commit sha.
fn release_tag(version: &str) -> Option<String> {
    let mut parts = version.split('.');
    let major = parts.next()?;
    let minor = parts.next()?;
    let numeric = |part: &str| !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit());
    (numeric(major) && numeric(minor)).then(|| format!("release:{major}.{minor}"))
}

/// `max_retries` → `maxRetries`.
fn camel_case(snake: &str) -> String {
    let mut camel = String::new();
    let mut upper = false;
    for c in snake.chars() {
        if c == '_' {
            upper = true;
        } else if upper {
            camel.extend(c.to_uppercase());
            upper = false;
        } else {
            camel.push(c);
        }
    }
    camel
}

/// An event being generated: the common fields are filled in, then each kind adds its own.
struct Draft {
    system: System,
    kind: Kind,
    second: i64,
    title: String,
    author: String,
    source: String,
    environment: Option<&'static str>,
    version: Option<String>,
    ended_at: Option<i64>,
    description: Option<String>,
    tags: Vec<String>,
    links: Vec<Value>,
    /// The diff this change would have; attached to a few events only.
    diff_ready: String,
    diff: Option<String>,
    attributes: Map<String, Value>,
}

impl Draft {
    fn new(system: System, kind: Kind, second: i64) -> Self {
        Self {
            system,
            kind,
            second,
            title: String::new(),
            author: String::new(),
            source: String::new(),
            environment: None,
            version: None,
            ended_at: None,
            description: None,
            tags: Vec::new(),
            links: Vec::new(),
            diff_ready: String::new(),
            diff: None,
            attributes: Map::new(),
        }
    }

    fn finish(self) -> Map<String, Value> {
        let time = |second: i64| {
            Timestamp::from_second(second)
                .map(|t| t.to_string())
                .unwrap_or_default()
        };
        let mut event = Map::new();
        event.insert("occurred_at".to_owned(), json!(time(self.second)));
        if let Some(ended_at) = self.ended_at {
            event.insert("ended_at".to_owned(), json!(time(ended_at)));
        }
        event.insert("title".to_owned(), json!(self.title));
        event.insert("system".to_owned(), json!(self.system.name));
        event.insert("author".to_owned(), json!(self.author));
        event.insert("kind".to_owned(), json!(self.kind.slug()));
        if let Some(environment) = self.environment {
            event.insert("environment".to_owned(), json!(environment));
        }
        event.insert("team".to_owned(), json!(self.system.team));
        event.insert("source".to_owned(), json!(self.source));
        if let Some(version) = self.version {
            event.insert("version".to_owned(), json!(version));
        }
        if let Some(description) = self.description {
            event.insert("description".to_owned(), json!(description));
        }
        if !self.tags.is_empty() {
            event.insert("tags".to_owned(), json!(self.tags));
        }
        if !self.links.is_empty() {
            event.insert("links".to_owned(), Value::Array(self.links));
        }
        if let Some(diff) = self.diff {
            event.insert("diff".to_owned(), json!(diff));
        }
        if !self.attributes.is_empty() {
            event.insert("attributes".to_owned(), Value::Object(self.attributes));
        }
        event
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use tfr_core::validate::{Limits, validate_new_event};

    fn anchor() -> Timestamp {
        "2026-11-26T00:00:00Z".parse().unwrap()
    }

    #[test]
    fn same_seed_same_history() {
        let a = generate(42, 500, anchor(), 60);
        let b = generate(42, 500, anchor(), 60);
        assert_eq!(a, b);
        let c = generate(43, 500, anchor(), 60);
        assert_ne!(a, c);
        assert_eq!(generate(7, 0, anchor(), 60), Vec::<Value>::new());
    }

    #[test]
    fn every_event_is_valid() {
        for seed in [1, 42, 1234] {
            for event in generate(seed, 1500, anchor(), 60) {
                if let Err(error) = validate_new_event(&event, &Limits::default(), anchor()) {
                    panic!("seed {seed}: {error}: {event:#}");
                }
            }
        }
    }

    #[test]
    fn keys_name_the_seed_the_day_and_the_index() {
        let events = generate(42, 3, anchor(), 60);
        let keys: Vec<&str> = events
            .iter()
            .map(|e| e["idempotency_key"].as_str().unwrap())
            .collect();
        assert_eq!(
            keys,
            [
                "demo:42:2026-11-26:0",
                "demo:42:2026-11-26:1",
                "demo:42:2026-11-26:2"
            ]
        );
    }

    #[test]
    fn history_is_realistic() {
        let events = generate(42, 1500, anchor(), 60);
        assert_eq!(events.len(), 1500);
        let start = anchor().as_second() - 60 * SECONDS_PER_DAY;
        let mut previous = i64::MIN;
        let mut systems: BTreeMap<&str, usize> = BTreeMap::new();
        let mut kinds: BTreeMap<&str, usize> = BTreeMap::new();
        let mut authors: BTreeMap<&str, usize> = BTreeMap::new();
        let (mut with_diff, mut ended, mut weekday, mut weekend) = (0, 0, 0, 0);
        for event in &events {
            let occurred: Timestamp = event["occurred_at"].as_str().unwrap().parse().unwrap();
            let second = occurred.as_second();
            assert!(second >= start && second < anchor().as_second(), "{event}");
            assert!(second >= previous, "events come oldest first");
            previous = second;
            if (second.div_euclid(SECONDS_PER_DAY) + 3).rem_euclid(7) >= 5 {
                weekend += 1;
            } else {
                weekday += 1;
            }
            *systems
                .entry(event["system"].as_str().unwrap())
                .or_default() += 1;
            *kinds.entry(event["kind"].as_str().unwrap()).or_default() += 1;
            *authors
                .entry(event["author"].as_str().unwrap())
                .or_default() += 1;
            with_diff += usize::from(event.get("diff").is_some());
            if let Some(end) = event.get("ended_at") {
                ended += 1;
                let end: Timestamp = end.as_str().unwrap().parse().unwrap();
                assert!(end > occurred && end < anchor());
            }
        }
        assert_eq!(systems.len(), 20, "{systems:?}");
        let most = systems.iter().max_by_key(|(_, n)| **n).unwrap();
        assert_eq!(*most.0, "player", "{systems:?}");
        assert!(
            systems["player"] > 5 * systems["feature-flags"],
            "{systems:?}"
        );
        assert_eq!(kinds.len(), 8, "{kinds:?}");
        assert!(kinds["deploy"] > kinds["config"], "{kinds:?}");
        assert!(authors.len() >= 18, "{authors:?}");
        for bot in ["github-actions", "ansible", "argo-cd"] {
            assert!(authors.contains_key(bot), "{bot} missing: {authors:?}");
        }
        assert!(
            (60..=180).contains(&with_diff),
            "{with_diff} events with a diff"
        );
        assert!(ended > 5, "{ended} A/B tests ended");
        assert!(
            weekday > 6 * weekend,
            "{weekday} weekday / {weekend} weekend events"
        );
    }

    #[test]
    fn versions_move_forward() {
        let events = generate(42, 1500, anchor(), 60);
        let releases: Vec<&str> = events
            .iter()
            .filter(|e| e["system"] == "player" && e["kind"] == "release")
            .map(|e| e["version"].as_str().unwrap())
            .collect();
        assert!(!releases.is_empty());
        let minors: Vec<u32> = releases
            .iter()
            .map(|v| v.split('.').nth(1).unwrap().parse().unwrap())
            .collect();
        assert!(minors.windows(2).all(|w| w[0] < w[1]), "{releases:?}");
        // Some version goes to staging first, then to production.
        let deploys: Vec<(&str, &str)> = events
            .iter()
            .filter(|e| e["system"] == "player" && e["kind"] == "deploy")
            .map(|e| {
                (
                    e["environment"].as_str().unwrap(),
                    e["version"].as_str().unwrap(),
                )
            })
            .collect();
        let promoted = deploys.iter().enumerate().any(|(i, (env, version))| {
            *env == "staging"
                && deploys[i + 1..]
                    .iter()
                    .any(|(later_env, later)| *later_env == "production" && later == version)
        });
        assert!(promoted, "{deploys:?}");
    }

    #[test]
    fn helpers() {
        assert_eq!(release_tag("5.2.1").as_deref(), Some("release:5.2"));
        assert_eq!(release_tag("a1b2c3d"), None);
        assert_eq!(release_tag("5"), None);
        assert_eq!(camel_case("idle_timeout_seconds"), "idleTimeoutSeconds");
        assert_eq!(
            start_of_day("2026-11-26T17:45:12Z".parse().unwrap()),
            anchor()
        );
        let mut rng = Rng::new(1);
        for _ in 0..1000 {
            let x = rng.range(3, 5);
            assert!((3..=5).contains(&x));
            let f = rng.next_f64();
            assert!((0.0..1.0).contains(&f));
        }
        assert_eq!(rng.below(0), 0);
    }
}
