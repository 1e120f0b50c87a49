//! `docs/openapi.json` is the API reference shipped in the repository; it must be the document
//! the code generates. Regenerate it with `TFR_UPDATE_DOCS=1 cargo test -p tfr-server --test openapi_doc`.

#[test]
fn committed_openapi_document_is_current() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/openapi.json");
    let generated = tfr_server::openapi_document()
        .to_pretty_json()
        .expect("serialize the OpenAPI document")
        + "\n";
    if std::env::var_os("TFR_UPDATE_DOCS").is_some() {
        std::fs::write(path, &generated).expect("write docs/openapi.json");
        return;
    }
    let committed = std::fs::read_to_string(path).unwrap_or_default();
    assert!(
        committed == generated,
        "docs/openapi.json is out of date: run TFR_UPDATE_DOCS=1 cargo test -p tfr-server --test openapi_doc"
    );
}
