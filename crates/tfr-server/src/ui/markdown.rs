//! Markdown descriptions, rendered safe by construction: raw HTML in the source is shown as
//! text, links and images may only point to http(s), mailto or this site, and images become
//! links (a page never loads a third party's picture).

use pulldown_cmark::{CowStr, Event, Options, Parser, Tag, TagEnd, html};

/// Renders Markdown to HTML that can be inserted in a page as is.
pub fn render(markdown: &str) -> String {
    let options =
        Options::ENABLE_TABLES | Options::ENABLE_STRIKETHROUGH | Options::ENABLE_TASKLISTS;
    let events = Parser::new_ext(markdown, options).map(|event| match event {
        Event::Html(raw) | Event::InlineHtml(raw) => Event::Text(raw),
        Event::Start(Tag::Link {
            link_type,
            dest_url,
            title,
            id,
        }) => Event::Start(Tag::Link {
            link_type,
            dest_url: safe_url(dest_url),
            title,
            id,
        }),
        Event::Start(Tag::Image {
            link_type,
            dest_url,
            title,
            id,
        }) => Event::Start(Tag::Link {
            link_type,
            dest_url: safe_url(dest_url),
            title,
            id,
        }),
        Event::End(TagEnd::Image) => Event::End(TagEnd::Link),
        other => other,
    });
    let mut out = String::with_capacity(markdown.len() * 3 / 2);
    html::push_html(&mut out, events);
    out
}

/// The URL if it is http(s), mailto or relative to this site; `#` otherwise.
fn safe_url(url: CowStr<'_>) -> CowStr<'_> {
    // Browsers read `\` as `/` in http(s) URLs: `/\evil.example` is `//evil.example`, another
    // site. Check the URL as a browser will read it.
    let lower = url.trim().to_ascii_lowercase().replace('\\', "/");
    let scheme_end = lower.find(':');
    let path_start = lower.find(['/', '?', '#']);
    let has_scheme = match (scheme_end, path_start) {
        (Some(colon), Some(path)) => colon < path,
        (Some(_), None) => true,
        _ => false,
    };
    let allowed = !has_scheme && !lower.starts_with("//")
        || lower.starts_with("http://")
        || lower.starts_with("https://")
        || lower.starts_with("mailto:");
    if allowed && !lower.chars().any(char::is_control) {
        url
    } else {
        CowStr::Borrowed("#")
    }
}

#[cfg(test)]
mod tests {
    use super::render;

    #[test]
    fn markdown_is_rendered() {
        let html = render("# Why\n\n**faster** start, see [PR](https://git.example.com/pr/1)");
        assert!(html.contains("<h1>Why</h1>"), "{html}");
        assert!(html.contains("<strong>faster</strong>"));
        assert!(html.contains(r#"<a href="https://git.example.com/pr/1">PR</a>"#));
    }

    #[test]
    fn raw_html_is_shown_not_run() {
        let html = render(
            "hello <script>alert(1)</script> <img src=x onerror=alert(1)>\n\n<div onclick=\"x()\">block</div>",
        );
        assert!(!html.contains("<script"), "{html}");
        assert!(!html.contains("<img"), "{html}");
        assert!(!html.contains("<div"), "{html}");
        assert!(html.contains("&lt;script&gt;"), "{html}");
    }

    #[test]
    fn dangerous_links_are_neutralised() {
        for source in [
            "[x](javascript:alert(1))",
            "[x](JavaScript:alert(1))",
            "[x]( javascript:alert(1))",
            "[x](data:text/html,<script>alert(1)</script>)",
            "[x](vbscript:msgbox)",
            "[x](//evil.example.com/a)",
            "[x](/\\evil.example.com/a)",
            "[x](javascript&#58;alert(1))",
            "<javascript:alert(1)>",
        ] {
            let html = render(source).to_ascii_lowercase();
            // The text may show the URL; no link may point to it.
            assert!(html.contains(r##"href="#""##), "{source}: {html}");
            for bad in [
                "href=\"javascript",
                "href=\" javascript",
                "href=\"data:",
                "href=\"vbscript",
                "href=\"//evil",
                "href=\"/\\evil",
            ] {
                assert!(!html.contains(bad), "{source}: {html}");
            }
        }
        assert!(render("[rel](/events/1)").contains(r#"href="/events/1""#));
        assert!(render("[m](mailto:ops@example.com)").contains("mailto:ops@example.com"));
    }

    #[test]
    fn images_become_links() {
        let html = render("![graph](https://grafana.example.com/render.png)");
        assert!(!html.contains("<img"), "{html}");
        assert!(
            html.contains(r#"<a href="https://grafana.example.com/render.png">graph</a>"#),
            "{html}"
        );
    }
}
