//! Lesson text: Markdown to HTML on the server, so the page only inserts it. Raw HTML in a
//! lesson is shown as text (a lesson folder is the server's, but a page must not run it).

use pulldown_cmark::{html, Event, Options, Parser};

pub fn to_html(markdown: &str) -> String {
    let parser = Parser::new_ext(
        markdown,
        Options::ENABLE_TABLES | Options::ENABLE_STRIKETHROUGH,
    )
    .map(|event| match event {
        Event::Html(raw) | Event::InlineHtml(raw) => Event::Text(raw),
        other => other,
    });
    let mut out = String::new();
    html::push_html(&mut out, parser);
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn markdown_becomes_html_and_raw_html_text() {
        let html = super::to_html("Type `hostname gamma` in **alpha**.\n\n<script>x()</script>\n");
        assert!(html.contains("<code>hostname gamma</code>"), "{html}");
        assert!(html.contains("<strong>alpha</strong>"), "{html}");
        assert!(!html.contains("<script>"), "{html}");
        assert!(html.contains("&lt;script&gt;"), "{html}");
    }
}
