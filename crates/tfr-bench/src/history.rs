//! The synthetic history: a realistic, deterministic stream of technical facts.
//!
//! - ~200 systems (40 domains × 5 roles) with Zipf popularity, grouped into 12 teams;
//! - 30 authors (24 people, 6 bots), Zipf popularity; 8 kinds with fixed weights;
//! - titles of 40-120 characters, descriptions of 0-2 KB (Markdown, 12% without), 5% of events
//!   with a unified diff of 1-50 KB, 0-4 `key:value` tags, 0-2 links, some attributes;
//! - spread over the two years before [`HISTORY_END`], denser on weekdays and working hours
//!   and growing over time; history events come oldest first (as an export replays them), 2%
//!   of them reported up to 30 minutes late.
//!
//! Every event is a pure function of the seed and its index ([`Rng::for_item`]), so the HTTP
//! run and the direct run store the same facts, and chunks can be made on demand.
//!
//! Three words of known frequency make the full-text searches comparable between runs:
//! [`COMMON_WORD`] in ~5% of events, [`RARE_WORD`] in ~0.02%, and [`ABSENT_WORD`] never (the
//! word lists and the pseudo-word generator cannot produce any of them).

use jiff::Timestamp;
use serde::Serialize;
use serde_json::{Value, json};

use crate::rng::{Rng, Weighted};

/// Searched for as the common word: in ~5% of events.
pub const COMMON_WORD: &str = "rollback";
const COMMON_SHARE: f64 = 0.05;
/// Searched for as the rare word: in ~0.02% of events.
pub const RARE_WORD: &str = "segfault";
const RARE_SHARE: f64 = 0.0002;
/// Searched for as the word with no hit.
pub const ABSENT_WORD: &str = "xylophone";

/// The history ends here (exclusive) and starts two years (730 days) before.
pub const HISTORY_END: &str = "2026-11-01T00:00:00Z";
const HISTORY_DAYS: i64 = 730;
const HOUR_MICROS: i64 = 3_600_000_000;
/// Single posts happen after the history, this far apart.
const POST_SPACING_MICROS: i64 = 4_000_000;

const STREAM_HISTORY: u64 = 1;
const STREAM_POSTS: u64 = 2;

const DOMAINS: [&str; 40] = [
    "player",
    "billing",
    "search",
    "auth",
    "catalog",
    "checkout",
    "cdn",
    "recommend",
    "ads",
    "analytics",
    "upload",
    "transcode",
    "notify",
    "profile",
    "comments",
    "payments",
    "subtitles",
    "drm",
    "live",
    "chat",
    "gateway",
    "inventory",
    "pricing",
    "identity",
    "mailer",
    "sso",
    "ledger",
    "metrics",
    "logging",
    "storage",
    "cache",
    "queue",
    "scheduler",
    "export",
    "import",
    "moderation",
    "geo",
    "images",
    "thumbnails",
    "feed",
];
const ROLES: [&str; 5] = ["api", "worker", "db", "web", "proxy"];
const TEAMS: [&str; 12] = [
    "video",
    "payments",
    "discovery",
    "identity",
    "platform",
    "growth",
    "data",
    "edge",
    "messaging",
    "content",
    "sre",
    "storage",
];

const FIRST_NAMES: [&str; 24] = [
    "alice", "bruno", "chloe", "david", "emma", "farid", "gaelle", "hugo", "ines", "jules",
    "karim", "lea", "marc", "nina", "oscar", "paula", "quentin", "rosa", "samir", "tina", "ugo",
    "vera", "willem", "yasmine",
];
const LAST_NAMES: [&str; 24] = [
    "martin", "bernard", "dubois", "thomas", "robert", "richard", "petit", "durand", "leroy",
    "moreau", "simon", "laurent", "lefebvre", "michel", "garcia", "david", "bertrand", "roux",
    "vincent", "fournier", "morel", "girard", "andre", "mercier",
];
/// Bots and the tool each one sends from.
const BOTS: [(&str, &str); 6] = [
    ("ci-bot", "jenkins"),
    ("deploy-bot", "argo"),
    ("renovate-bot", "github"),
    ("ansible", "ansible"),
    ("terraform", "terraform"),
    ("argocd", "argo"),
];
const PERSON_SOURCES: [&str; 3] = ["cli", "github", "gitlab"];

/// The eight kinds and their shares.
const KINDS: [(&str, f64); 8] = [
    ("deploy", 0.32),
    ("config", 0.18),
    ("feature_flag", 0.12),
    ("release", 0.10),
    ("infra", 0.09),
    ("ab_test", 0.07),
    ("os_update", 0.07),
    ("schema", 0.05),
];

/// Words of technical prose, the most frequent ranks of the vocabulary.
const WORDS: [&str; 120] = [
    "the",
    "to",
    "and",
    "of",
    "for",
    "on",
    "in",
    "with",
    "is",
    "this",
    "from",
    "after",
    "before",
    "we",
    "it",
    "be",
    "by",
    "now",
    "new",
    "old",
    "all",
    "traffic",
    "latency",
    "errors",
    "request",
    "requests",
    "service",
    "cluster",
    "node",
    "nodes",
    "pod",
    "pods",
    "memory",
    "cpu",
    "disk",
    "timeout",
    "retry",
    "retries",
    "queue",
    "cache",
    "database",
    "index",
    "query",
    "table",
    "column",
    "replica",
    "primary",
    "failover",
    "region",
    "zone",
    "canary",
    "percent",
    "users",
    "customers",
    "release",
    "build",
    "pipeline",
    "job",
    "version",
    "upgrade",
    "patch",
    "fix",
    "bug",
    "issue",
    "ticket",
    "incident",
    "alert",
    "dashboard",
    "monitoring",
    "metrics",
    "logs",
    "config",
    "setting",
    "flag",
    "feature",
    "experiment",
    "variant",
    "control",
    "baseline",
    "rollout",
    "gradual",
    "staged",
    "approved",
    "reviewed",
    "merged",
    "branch",
    "commit",
    "tag",
    "image",
    "container",
    "kernel",
    "package",
    "library",
    "dependency",
    "security",
    "cve",
    "certificate",
    "tls",
    "dns",
    "load",
    "balancer",
    "ingress",
    "egress",
    "network",
    "firewall",
    "rule",
    "policy",
    "limit",
    "quota",
    "capacity",
    "scale",
    "autoscaling",
    "throughput",
    "backlog",
    "consumer",
    "producer",
    "schema",
    "migration",
    "backfill",
    "owner",
];
/// Consonants and vowels of the pseudo-words that make the long tail of the vocabulary. A
/// pseudo-word alternates one consonant and one vowel, so it never holds a cluster such as the
/// `gf` of [`RARE_WORD`] or the `ll` of [`COMMON_WORD`], nor an `x` or `y`.
const CONSONANTS: &[u8] = b"bdfgklmnprstv";
const VOWELS: &[u8] = b"aeiou";
/// Pseudo-words in the vocabulary after [`WORDS`].
const PSEUDO_WORDS: usize = 4_880;

const CONFIG_KEYS: [&str; 10] = [
    "max_connections",
    "pool_size",
    "request_timeout_ms",
    "log_level",
    "cache_ttl",
    "rate_limit",
    "worker_threads",
    "retry_budget",
    "gc_interval",
    "batch_size",
];
const PACKAGES: [&str; 8] = [
    "openssl", "glibc", "nginx", "openjdk", "python3", "libcurl", "systemd", "kernel",
];
const INFRA_ACTIONS: [&str; 4] = ["Resize", "Replace", "Add", "Drain"];
const INFRA_THINGS: [&str; 4] = ["node pool", "load balancer", "volume", "subnet"];
const SCHEMA_CHANGES: [&str; 4] = ["add column", "create index", "drop table", "alter type"];
const ENVIRONMENTS: [(&str, f64); 3] = [("production", 0.55), ("staging", 0.35), ("dev", 0.10)];
const REGIONS: [&str; 4] = ["eu-west-1", "us-east-1", "ap-south-1", "eu-central-1"];

/// One generated event, serialized as the API's input.
#[derive(Clone, Debug, Serialize)]
pub struct GeneratedEvent {
    pub occurred_at: String,
    pub title: String,
    pub system: String,
    pub author: String,
    pub kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub environment: Option<&'static str>,
    pub team: String,
    pub source: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub tags: Vec<String>,
    pub links: Vec<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub diff: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attributes: Option<Value>,
    pub idempotency_key: String,
}

impl GeneratedEvent {
    /// Whether the searched words occur in it (as full text sees it).
    pub fn mentions(&self, word: &str) -> bool {
        self.title.contains(word)
            || self
                .description
                .as_deref()
                .is_some_and(|text| text.contains(word))
    }

    /// The event as one NDJSON line, newline included.
    pub fn to_ndjson(&self, out: &mut Vec<u8>) {
        // Serializing strings, numbers and vectors of them cannot fail.
        serde_json::to_writer(&mut *out, self).unwrap_or_default();
        out.push(b'\n');
    }

    pub fn to_value(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }
}

/// The generator of one seed's history.
#[derive(Clone, Debug)]
pub struct History {
    seed: u64,
    events: u64,
    start_micros: i64,
    end_micros: i64,
    /// Systems by popularity rank.
    systems: Vec<(String, &'static str)>,
    system_weights: Weighted,
    authors: Vec<(String, &'static str)>,
    author_weights: Weighted,
    kind_weights: Weighted,
    environment_weights: Weighted,
    vocabulary: Vec<String>,
    word_weights: Weighted,
    /// Cumulative weight of each hour of the two years.
    hour_cumulative: Vec<f64>,
}

impl History {
    pub fn new(seed: u64, events: u64) -> Self {
        let end: Timestamp = HISTORY_END.parse().unwrap_or(Timestamp::UNIX_EPOCH);
        let end_micros = end.as_microsecond();
        let start_micros = end_micros - HISTORY_DAYS * 24 * HOUR_MICROS;

        let mut setup = Rng::for_item(seed, 0, 0);
        let mut systems: Vec<(String, &'static str)> = DOMAINS
            .iter()
            .enumerate()
            .flat_map(|(d, domain)| {
                ROLES
                    .iter()
                    .map(move |role| (format!("{domain}-{role}"), TEAMS[d % TEAMS.len()]))
            })
            .collect();
        shuffle(&mut systems, &mut setup);
        let mut authors: Vec<(String, &'static str)> = (0..FIRST_NAMES.len())
            .map(|i| {
                let last = LAST_NAMES[(i * 7 + 3) % LAST_NAMES.len()];
                let source = PERSON_SOURCES[i % PERSON_SOURCES.len()];
                (format!("{}.{last}", FIRST_NAMES[i]), source)
            })
            .chain(
                BOTS.iter()
                    .map(|(name, source)| ((*name).to_owned(), *source)),
            )
            .collect();
        shuffle(&mut authors, &mut setup);

        let mut vocabulary: Vec<String> = WORDS.iter().map(|w| (*w).to_owned()).collect();
        let mut seen: std::collections::HashSet<String> = vocabulary.iter().cloned().collect();
        let mut attempt = 0u64;
        while vocabulary.len() < WORDS.len() + PSEUDO_WORDS {
            let word = pseudo_word(&mut Rng::for_item(seed, 3, attempt));
            attempt += 1;
            if seen.insert(word.clone()) {
                vocabulary.push(word);
            }
        }

        let hours = HISTORY_DAYS * 24;
        let mut total = 0.0;
        let hour_cumulative = (0..hours)
            .map(|hour| {
                total += hour_weight(
                    start_micros + hour * HOUR_MICROS,
                    hour as f64 / hours as f64,
                );
                total
            })
            .collect();

        Self {
            seed,
            events,
            start_micros,
            end_micros,
            systems,
            system_weights: Weighted::zipf(DOMAINS.len() * ROLES.len(), 1.07),
            authors,
            author_weights: Weighted::zipf(FIRST_NAMES.len() + BOTS.len(), 0.9),
            kind_weights: Weighted::new(KINDS.iter().map(|(_, w)| *w)),
            environment_weights: Weighted::new(ENVIRONMENTS.iter().map(|(_, w)| *w)),
            word_weights: Weighted::zipf(vocabulary.len(), 1.0),
            vocabulary,
            hour_cumulative,
        }
    }

    pub fn len(&self) -> u64 {
        self.events
    }

    pub fn is_empty(&self) -> bool {
        self.events == 0
    }

    /// The system of a popularity rank (0 is the most popular), and its share of events.
    pub fn system(&self, rank: usize) -> (&str, f64) {
        let rank = rank.min(self.systems.len() - 1);
        (&self.systems[rank].0, self.system_weights.probability(rank))
    }

    /// When the history starts.
    pub fn start(&self) -> Timestamp {
        Timestamp::from_microsecond(self.start_micros).unwrap_or(Timestamp::UNIX_EPOCH)
    }

    /// When the `count`-th single post happens (after the whole history).
    pub fn post_time(&self, index: u64) -> Timestamp {
        let micros = self.end_micros + (index as i64 + 1) * POST_SPACING_MICROS;
        Timestamp::from_microsecond(micros).unwrap_or(Timestamp::UNIX_EPOCH)
    }

    /// The time of history event `index`, before any late reporting: the times of a history
    /// grow with the index, so the `k`-th newest history event is close to this at
    /// `len - 1 - k`.
    pub fn base_time(&self, index: u64) -> Timestamp {
        let mut rng = Rng::for_item(self.seed, STREAM_HISTORY, index);
        Timestamp::from_microsecond(self.time_at(index, rng.unit()))
            .unwrap_or(Timestamp::UNIX_EPOCH)
    }

    fn time_at(&self, index: u64, jitter: f64) -> i64 {
        let total = self.hour_cumulative.last().copied().unwrap_or(1.0);
        let target = (index as f64 + jitter) / self.events.max(1) as f64 * total;
        let hour = self
            .hour_cumulative
            .partition_point(|cumulative| *cumulative <= target)
            .min(self.hour_cumulative.len() - 1);
        let before = if hour == 0 {
            0.0
        } else {
            self.hour_cumulative[hour - 1]
        };
        let weight = self.hour_cumulative[hour] - before;
        let within = ((target - before) / weight).clamp(0.0, 0.999_999);
        self.start_micros + hour as i64 * HOUR_MICROS + (within * HOUR_MICROS as f64) as i64
    }

    /// History event `index` (`0..len`), oldest first.
    pub fn event(&self, index: u64) -> GeneratedEvent {
        let mut rng = Rng::for_item(self.seed, STREAM_HISTORY, index);
        let mut micros = self.time_at(index, rng.unit());
        if rng.chance(0.02) {
            micros -= rng.below(30 * 60_000_000) as i64;
        }
        let key = format!("bench:{}:{index}", self.seed);
        self.make(&mut rng, micros, key)
    }

    /// Single post `index`: an event that happens after the history, as CI jobs post them.
    pub fn post(&self, index: u64) -> GeneratedEvent {
        let mut rng = Rng::for_item(self.seed, STREAM_POSTS, index);
        let micros = self.post_time(index).as_microsecond();
        let key = format!("bench:{}:post:{index}", self.seed);
        self.make(&mut rng, micros, key)
    }

    fn make(&self, rng: &mut Rng, micros: i64, idempotency_key: String) -> GeneratedEvent {
        let (system, team) = &self.systems[self.system_weights.sample(rng)];
        let (author, person_source) = &self.authors[self.author_weights.sample(rng)];
        let kind = KINDS[self.kind_weights.sample(rng)].0;
        let environment =
            (!rng.chance(0.05)).then(|| ENVIRONMENTS[self.environment_weights.sample(rng)].0);
        let source = if kind == "infra" && rng.chance(0.6) {
            "terraform"
        } else {
            person_source
        };
        let version = match kind {
            "deploy" | "release" if rng.chance(0.7) => Some(format!(
                "{}.{}.{}",
                rng.between(1, 9),
                rng.below(40),
                rng.below(100)
            )),
            "deploy" | "release" | "os_update" => Some(hex(rng, 12)),
            _ if rng.chance(0.2) => Some(hex(rng, 12)),
            _ => None,
        };
        let env_name = environment.unwrap_or("production");
        let head = match kind {
            "deploy" => format!(
                "Deploy {system} {} to {env_name}",
                version.as_deref().unwrap_or("latest")
            ),
            "config" => format!("Change {} on {system}", rng.pick(&CONFIG_KEYS)),
            "feature_flag" => format!(
                "Turn {} flag {}_{} for {}% of {system} users",
                if rng.chance(0.7) { "on" } else { "off" },
                self.word(rng),
                self.word(rng),
                rng.between(1, 100)
            ),
            "release" => format!("Release {system} {}", version.as_deref().unwrap_or("1.0.0")),
            "infra" => format!(
                "{} {} for {system}",
                rng.pick(&INFRA_ACTIONS),
                rng.pick(&INFRA_THINGS)
            ),
            "ab_test" => format!(
                "Start A/B test {}-{} on {system}",
                self.word(rng),
                rng.below(1000)
            ),
            "os_update" => format!(
                "Upgrade {} to {}.{} on {system} hosts",
                rng.pick(&PACKAGES),
                rng.between(1, 30),
                rng.below(20)
            ),
            _ => format!(
                "Migrate {system} schema: {} {}_{}",
                rng.pick(&SCHEMA_CHANGES),
                self.word(rng),
                self.word(rng)
            ),
        };
        let mut title = head;
        let length = rng.between(40, 120) as usize;
        let common = rng.chance(COMMON_SHARE);
        let rare = rng.chance(RARE_SHARE);
        if common && rng.chance(0.5) {
            title.push_str(" with ");
            title.push_str(COMMON_WORD);
            title.push_str(" plan");
        }
        if title.len() < length {
            title.push(':');
        }
        while title.len() < length {
            title.push(' ');
            title.push_str(self.word(rng));
        }
        truncate_at_word(&mut title, 120);

        let description = if rng.chance(0.12) {
            None
        } else {
            let size = rng.between(1, 2048) as usize;
            let mut text = self.prose(rng, size);
            if common && !title.contains(COMMON_WORD) {
                insert_word(&mut text, COMMON_WORD, rng);
            }
            if rare {
                insert_word(&mut text, RARE_WORD, rng);
            }
            Some(text)
        };
        let (title, description) = match description {
            Some(text) => (title, Some(text)),
            // No description to carry the searched words: the title does.
            None => {
                if common && !title.contains(COMMON_WORD) {
                    append_word(&mut title, COMMON_WORD);
                }
                if rare {
                    append_word(&mut title, RARE_WORD);
                }
                (title, None)
            }
        };

        let tags = (0..rng.below(5)).map(|_| tag(rng)).collect();
        let links = (0..rng.below(3))
            .map(|i| {
                if i == 0 {
                    json!({"url": format!("https://ci.example.com/job/{system}/{}", rng.between(1, 99_999))})
                } else {
                    json!({
                        "url": format!("https://git.example.com/{team}/{system}/pull/{}", rng.between(1, 9_999)),
                        "title": "pull request"
                    })
                }
            })
            .collect();
        let diff = rng.chance(0.05).then(|| {
            let size = rng.between(1024, 50 * 1024) as usize;
            self.diff(rng, system, size)
        });
        let attributes = rng
            .chance(0.2)
            .then(|| json!({"build": rng.between(1, 999_999), "duration_s": rng.between(5, 3600)}));
        GeneratedEvent {
            occurred_at: Timestamp::from_microsecond(micros)
                .unwrap_or(Timestamp::UNIX_EPOCH)
                .to_string(),
            title,
            system: system.clone(),
            author: author.clone(),
            kind,
            environment,
            team: (*team).to_owned(),
            source,
            version,
            description,
            tags,
            links,
            diff,
            attributes,
            idempotency_key,
        }
    }

    fn word(&self, rng: &mut Rng) -> &str {
        &self.vocabulary[self.word_weights.sample(rng)]
    }

    /// Markdown prose of about `size` bytes: sentences, sometimes a bullet list.
    fn prose(&self, rng: &mut Rng, size: usize) -> String {
        let mut text = String::with_capacity(size + 16);
        while text.len() < size {
            if !text.is_empty() {
                text.push_str(if rng.chance(0.15) { "\n\n- " } else { " " });
            }
            let words = rng.between(6, 16);
            for i in 0..words {
                let word = self.word(rng);
                if i == 0 {
                    let mut chars = word.chars();
                    if let Some(first) = chars.next() {
                        text.extend(first.to_uppercase());
                        text.push_str(chars.as_str());
                    }
                } else {
                    text.push(' ');
                    text.push_str(word);
                }
            }
            text.push('.');
        }
        truncate_at_word(&mut text, size.max(16));
        text
    }

    /// A unified diff of about `size` bytes over one to four files.
    fn diff(&self, rng: &mut Rng, system: &str, size: usize) -> String {
        let files = rng.between(1, 4);
        let per_file = size / files as usize;
        let mut diff = String::with_capacity(size + 256);
        for _ in 0..files {
            let path = format!("src/{}/{}.rs", self.word(rng), self.word(rng));
            diff.push_str(&format!(
                "diff --git a/{system}/{path} b/{system}/{path}\n--- a/{system}/{path}\n+++ b/{system}/{path}\n"
            ));
            let file_end = diff.len() + per_file;
            while diff.len() < file_end {
                let line = rng.between(1, 5000);
                let count = rng.between(3, 12);
                diff.push_str(&format!("@@ -{line},{count} +{line},{count} @@\n"));
                for _ in 0..count {
                    let mark = match rng.below(4) {
                        0 => '-',
                        1 => '+',
                        _ => ' ',
                    };
                    diff.push_str(&format!(
                        "{mark}    let {}_{} = {}({});\n",
                        self.word(rng),
                        self.word(rng),
                        self.word(rng),
                        self.word(rng)
                    ));
                }
            }
        }
        diff
    }
}

/// A weight for the hour starting at `micros`: weekdays and working hours are busier, and the
/// platform grows (`progress` goes from 0 to 1 over the history).
fn hour_weight(micros: i64, progress: f64) -> f64 {
    let hours_since_epoch = micros.div_euclid(HOUR_MICROS);
    let hour_of_day = hours_since_epoch.rem_euclid(24);
    // 1970-01-01 was a Thursday: day 0 is weekday 3 counting from Monday = 0.
    let weekday = (hours_since_epoch.div_euclid(24) + 3).rem_euclid(7);
    let day = if weekday >= 5 { 0.22 } else { 1.0 };
    let hour = match hour_of_day {
        7..=17 => 1.0,
        18..=21 | 5..=6 => 0.35,
        _ => 0.08,
    };
    day * hour * (0.6 + 0.8 * progress)
}

fn shuffle<T>(items: &mut [T], rng: &mut Rng) {
    for i in (1..items.len()).rev() {
        let j = rng.below(i as u64 + 1) as usize;
        items.swap(i, j);
    }
}

fn pseudo_word(rng: &mut Rng) -> String {
    let syllables = rng.between(2, 4);
    let mut word = String::with_capacity(8);
    for _ in 0..syllables {
        word.push(char::from(*rng.pick(CONSONANTS)));
        word.push(char::from(*rng.pick(VOWELS)));
    }
    word
}

fn hex(rng: &mut Rng, digits: usize) -> String {
    (0..digits)
        .map(|_| char::from(b"0123456789abcdef"[rng.below(16) as usize]))
        .collect()
}

fn tag(rng: &mut Rng) -> String {
    match rng.below(6) {
        0 => format!("region:{}", rng.pick(&REGIONS)),
        1 => format!("ticket:OPS-{}", rng.between(1, 9999)),
        2 => format!("canary:{}", rng.chance(0.3)),
        3 => format!("tier:{}", rng.between(1, 3)),
        4 => format!(
            "cluster:k8s-{}-{:02}",
            if rng.chance(0.6) { "prod" } else { "stg" },
            rng.between(1, 12)
        ),
        _ => format!("change:CHG{}", rng.between(100_000, 999_999)),
    }
}

/// Cuts `text` to at most `max` bytes, at a space when there is one.
fn truncate_at_word(text: &mut String, max: usize) {
    if text.len() <= max {
        return;
    }
    // The generated text is ASCII, so every index is a character boundary.
    let cut = text[..max].rfind(' ').filter(|at| *at > 0).unwrap_or(max);
    text.truncate(cut);
}

/// Puts `word` between two words of `text`.
fn insert_word(text: &mut String, word: &str, rng: &mut Rng) {
    let spaces: Vec<usize> = text.match_indices(' ').map(|(at, _)| at).collect();
    let at = if spaces.is_empty() {
        text.len()
    } else {
        *rng.pick(&spaces)
    };
    text.insert_str(at, &format!(" {word}"));
}

/// Ends a title with `word`, cutting words before it to stay within 120 bytes.
fn append_word(title: &mut String, word: &str) {
    truncate_at_word(title, 120 - word.len() - 1);
    title.push(' ');
    title.push_str(word);
}

#[cfg(test)]
mod tests {
    use super::*;
    use tfr_core::Limits;
    use tfr_core::validate::validate_new_event;

    #[test]
    fn deterministic() {
        let a = History::new(42, 1000);
        let b = History::new(42, 1000);
        for i in [0, 1, 500, 999] {
            assert_eq!(a.event(i).to_value(), b.event(i).to_value());
        }
        assert_eq!(a.post(3).to_value(), b.post(3).to_value());
        assert_ne!(
            History::new(43, 1000).event(0).to_value(),
            a.event(0).to_value()
        );
    }

    #[test]
    fn events_are_valid_and_shaped_as_promised() {
        let history = History::new(7, 20_000);
        let now = Timestamp::now();
        let (mut common, mut diffs, mut no_description) = (0, 0, 0);
        let mut previous = history.start();
        let mut systems = std::collections::HashSet::new();
        let mut authors = std::collections::HashSet::new();
        for i in 0..history.len() {
            let event = history.event(i);
            validate_new_event(&event.to_value(), &Limits::default(), now)
                .unwrap_or_else(|e| panic!("event {i} invalid: {e:?}"));
            assert!((40..=120).contains(&event.title.len()), "{}", event.title);
            assert!(event.description.as_ref().is_none_or(|d| d.len() <= 2100));
            assert!(!event.mentions(ABSENT_WORD));
            common += u32::from(event.mentions(COMMON_WORD));
            no_description += u32::from(event.description.is_none());
            if let Some(diff) = &event.diff {
                diffs += 1;
                assert!((1024..=52 * 1024).contains(&diff.len()));
            }
            let at: Timestamp = event.occurred_at.parse().unwrap();
            assert!(at >= history.start() && at < HISTORY_END.parse::<Timestamp>().unwrap());
            // Late reports aside, time grows with the index.
            assert!(at >= previous - jiff::SignedDuration::from_mins(31));
            previous = previous.max(at);
            systems.insert(event.system);
            authors.insert(event.author);
        }
        let share = |n: u32| f64::from(n) / 20_000.0;
        assert!((0.04..0.06).contains(&share(common)), "{common}");
        assert!((0.04..0.06).contains(&share(diffs)), "{diffs}");
        assert!((0.10..0.14).contains(&share(no_description)));
        assert!(systems.len() > 150, "{}", systems.len());
        assert_eq!(authors.len(), 30);
        assert!(history.system(0).1 > 0.08);
    }

    #[test]
    fn pseudo_words_cannot_spell_the_searched_words() {
        let history = History::new(1, 10);
        for word in [COMMON_WORD, RARE_WORD, ABSENT_WORD] {
            assert!(!history.vocabulary.iter().any(|w| w.contains(word)));
        }
    }
}
