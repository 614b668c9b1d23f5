//! The Cloud Storage sign-in the binary installs in the workload (`storage_sign_in`): the real
//! gcloud-auth stack reads application default credentials from GOOGLE_APPLICATION_CREDENTIALS
//! and fetches a token from the (local fake) OAuth endpoint the file names. Its own test binary,
//! since it sets a process-wide environment variable.

use launch::dataproc::storage_sign_in;

#[path = "support/dataproc_api.rs"]
mod dataproc_api;
use dataproc_api::{serve, write_credentials, JobMode, TOKEN};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_storage_sign_in_gets_its_token_from_application_default_credentials() {
    let (fake, base) = serve(JobMode::Done).await;
    let dir = std::env::temp_dir().join(format!("cp-storage-sign-in-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let adc = dir.join("adc.json");
    write_credentials(&adc, &base);
    std::env::set_var("GOOGLE_APPLICATION_CREDENTIALS", &adc);
    let provider = storage_sign_in().await.expect("signed in");
    let token = provider.token_source().token().await.expect("a token");
    assert!(token.ends_with(TOKEN), "token {token:?}");
    assert!(fake
        .lock()
        .unwrap()
        .requests
        .iter()
        .any(|r| r.method == "POST" && r.path == "/token"));

    // Unreadable credentials: an error, not a panic.
    std::fs::write(&adc, "{ not json").unwrap();
    assert!(storage_sign_in().await.is_err());
    let _ = std::fs::remove_dir_all(dir);
}
