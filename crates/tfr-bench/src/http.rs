//! The HTTP side: the workload sent to a running `tfr serve` over real connections on
//! loopback, as clients send it (`tfr import` for bulk, a CI job's single POST).

use std::time::Duration;

use anyhow::{Context, bail};
use serde_json::Value;

use crate::history::GeneratedEvent;
use crate::workload::{PAGE_SIZE, QueryKind, QueryPlan, Target};

pub struct HttpTarget {
    client: reqwest::Client,
    base_url: String,
}

/// A client for the benchmark: keep-alive connections, enough of them for every concurrent
/// client, and generous timeouts (a slow answer is a result, not an error).
pub fn client() -> anyhow::Result<reqwest::Client> {
    reqwest::Client::builder()
        .pool_max_idle_per_host(256)
        .timeout(Duration::from_secs(600))
        .build()
        .context("cannot build the HTTP client")
}

impl HttpTarget {
    pub fn new(client: reqwest::Client, base_url: &str) -> Self {
        Self {
            client,
            base_url: base_url.to_owned(),
        }
    }

    /// The answer's JSON, or an error naming the status and the start of the body.
    async fn json(&self, request: reqwest::RequestBuilder, expected: u16) -> anyhow::Result<Value> {
        let response = request.send().await.context("request failed")?;
        let status = response.status().as_u16();
        let body = response
            .bytes()
            .await
            .context("reading the answer failed")?;
        if status != expected {
            let text = String::from_utf8_lossy(&body);
            bail!(
                "expected {expected}, got {status}: {}",
                text.chars().take(300).collect::<String>()
            );
        }
        serde_json::from_slice(&body).context("the answer is not JSON")
    }

    /// Fails unless the server holds no event: the benchmark needs an empty store.
    pub async fn check_empty(&self) -> anyhow::Result<()> {
        let page = self
            .json(
                self.client
                    .get(format!("{}/api/v1/events?limit=1", self.base_url)),
                200,
            )
            .await?;
        if page["events"]
            .as_array()
            .is_some_and(|events| !events.is_empty())
        {
            bail!("the server's store already holds events; the benchmark needs an empty one");
        }
        Ok(())
    }

    fn url(&self, plan: &QueryPlan) -> String {
        match &plan.kind {
            QueryKind::Page { q, cursor } => {
                let mut url = format!("{}/api/v1/events?limit={PAGE_SIZE}", self.base_url);
                if !q.is_empty() {
                    url.push_str("&q=");
                    url.push_str(&encode(q));
                }
                if let Some(cursor) = cursor {
                    url.push_str("&cursor=");
                    url.push_str(&encode(&cursor.to_string()));
                }
                url
            }
            QueryKind::Last { q } => {
                format!("{}/api/v1/events/last?q={}", self.base_url, encode(q))
            }
            QueryKind::Histogram { from, to } => format!(
                "{}/api/v1/stats/histogram?interval=day&by=kind&from={}&to={}",
                self.base_url,
                encode(&from.to_string()),
                encode(&to.to_string())
            ),
        }
    }
}

impl Target for HttpTarget {
    type Bulk = Vec<u8>;
    type Post = Vec<u8>;

    fn prepare_bulk(&self, events: &[GeneratedEvent]) -> anyhow::Result<Vec<u8>> {
        let mut body = Vec::new();
        for event in events {
            event.to_ndjson(&mut body);
        }
        Ok(body)
    }

    async fn index_lag(&self) -> anyhow::Result<Option<u64>> {
        let url = format!("{}/metrics", self.base_url);
        let response = self
            .client
            .get(&url)
            .send()
            .await
            .with_context(|| format!("GET {url}"))?;
        if !response.status().is_success() {
            bail!("GET {url}: {}", response.status());
        }
        let text = response
            .text()
            .await
            .with_context(|| format!("GET {url}"))?;
        Ok(text.lines().find_map(|line| {
            line.strip_prefix("tfr_fulltext_index_lag_events ")
                .and_then(|value| value.trim().parse().ok())
        }))
    }

    async fn send_bulk(&self, body: Vec<u8>) -> anyhow::Result<u64> {
        let lines = body.iter().filter(|b| **b == b'\n').count();
        let outcome = self
            .json(
                self.client
                    .post(format!("{}/api/v1/events/bulk", self.base_url))
                    .header("content-type", "application/x-ndjson")
                    .body(body),
                200,
            )
            .await
            .context("bulk request")?;
        if outcome["errors"].as_array().is_some_and(|e| !e.is_empty()) {
            bail!("bulk request refused lines: {}", outcome["errors"]);
        }
        let created = outcome["created"].as_u64().unwrap_or(0);
        if created as usize != lines {
            bail!("bulk request of {lines} lines created {created}: {outcome}");
        }
        Ok(created)
    }

    fn prepare_post(&self, event: &GeneratedEvent) -> anyhow::Result<Vec<u8>> {
        serde_json::to_vec(event).context("cannot serialize an event")
    }

    async fn send_post(&self, body: &Vec<u8>) -> anyhow::Result<()> {
        self.json(
            self.client
                .post(format!("{}/api/v1/events", self.base_url))
                .header("content-type", "application/json")
                .body(body.clone()),
            201,
        )
        .await
        .context("single POST")?;
        Ok(())
    }

    async fn query(&self, plan: &QueryPlan) -> anyhow::Result<u64> {
        let request = self.client.get(self.url(plan));
        let answer = match &plan.kind {
            QueryKind::Last { .. } => {
                // `last` answers 404 when nothing matches; that is an answer too.
                let response = request.send().await.context("request failed")?;
                let status = response.status().as_u16();
                let body = response.bytes().await?;
                match status {
                    200 => return Ok(1),
                    404 => return Ok(0),
                    _ => bail!("last: status {status}: {}", String::from_utf8_lossy(&body)),
                }
            }
            _ => self.json(request, 200).await?,
        };
        Ok(match &plan.kind {
            QueryKind::Histogram { .. } => answer["buckets"].as_array().map_or(0, |buckets| {
                buckets
                    .iter()
                    .map(|bucket| bucket["total"].as_u64().unwrap_or(0))
                    .sum()
            }),
            _ => answer["events"].as_array().map_or(0, Vec::len) as u64,
        })
    }
}

/// Percent-encodes a query-string value (everything but RFC 3986's unreserved characters).
pub fn encode(value: &str) -> String {
    let mut encoded = String::with_capacity(value.len() * 3);
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            encoded.push(char::from(byte));
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    encoded
}

#[cfg(test)]
mod tests {
    #[test]
    fn encoding() {
        assert_eq!(
            super::encode("system:a b+c/é"),
            "system%3Aa%20b%2Bc%2F%C3%A9"
        );
    }
}
