//! Every shared signature vector gives its expected result through `payhook verify`, and the
//! command's exit codes follow its contract (0 valid, 1 invalid with JSON, 2 usage error).

use crate::support::payhook;
use std::path::{Path, PathBuf};

use payhook_testkit::conformance::{conformance_dir, read_jsonl};
use serde_json::Value;

fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("verify-vectors");
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

fn args_for(vector: &Value, sig_dir: &Path) -> Vec<String> {
    let id = vector["id"].as_str().unwrap();
    let provider = vector["provider"].as_str().unwrap();
    let body_path = scratch(&format!("{id}.body"));
    std::fs::write(&body_path, vector["body"].as_str().unwrap()).unwrap();
    let mut args = vec![
        "verify".to_owned(),
        "--provider".to_owned(),
        provider.to_owned(),
        "--body-file".to_owned(),
        body_path.display().to_string(),
    ];
    // Headers and secrets from files, as the README tells people to pass real ones.
    let header_file = scratch(&format!("{id}.headers"));
    let lines: String = vector["headers"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(name, value)| format!("{name}: {}\n", value.as_str().unwrap()))
        .collect();
    std::fs::write(&header_file, format!("# captured request headers\n{lines}")).unwrap();
    args.push("--header-file".into());
    args.push(header_file.display().to_string());
    // An empty secret (a configuration-error vector) cannot be a line of a secret file.
    let secret_args = |secret: &str| -> [String; 2] {
        if secret.is_empty() {
            return ["--secret".into(), String::new()];
        }
        let path = scratch(&format!("{id}.secret"));
        std::fs::write(&path, format!("{secret}\n")).unwrap();
        ["--secret-file".into(), path.display().to_string()]
    };
    if let Some(now) = vector["now"].as_i64() {
        args.push("--now".into());
        args.push(now.to_string());
    }
    match provider {
        "stripe" => {
            args.extend(secret_args(vector["secret"].as_str().unwrap()));
            args.push("--tolerance".into());
            args.push(vector["tolerance_s"].as_u64().unwrap_or(0).to_string());
        }
        "square" => {
            args.extend(secret_args(vector["secret"].as_str().unwrap()));
            args.push("--notification-url".into());
            args.push(vector["url"].as_str().unwrap_or("").to_owned());
        }
        "paypal" => {
            // Every PayPal vector was delivered from (or built like) the PayPal sandbox.
            args.push("--paypal-environment".into());
            args.push("sandbox".into());
            args.push("--webhook-id".into());
            args.push(vector["webhook_id"].as_str().unwrap().to_owned());
            let leaf = vector["secret"]
                .as_str()
                .unwrap()
                .trim_start_matches("file:");
            let chain: Vec<&str> = vector["trust_chain_files"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_str().unwrap())
                .collect();
            let (anchor, intermediates) = chain.split_last().unwrap();
            let mut bundle = std::fs::read(sig_dir.join(leaf)).unwrap();
            for file in intermediates {
                bundle.push(b'\n');
                bundle.extend(std::fs::read(sig_dir.join(file)).unwrap());
            }
            let cert_path = scratch(&format!("{id}.bundle.pem"));
            std::fs::write(&cert_path, bundle).unwrap();
            args.push("--cert-file".into());
            args.push(cert_path.display().to_string());
            args.push("--trust-anchor".into());
            args.push(sig_dir.join(anchor).display().to_string());
        }
        other => panic!("unknown provider {other}"),
    }
    args
}

#[test]
fn every_signature_vector_agrees_through_payhook_verify() {
    let Some(dir) = conformance_dir() else { return };
    let sig_dir = dir.join("signatures");
    let vectors = read_jsonl(&sig_dir.join("vectors.jsonl")).unwrap();
    assert_eq!(vectors.len(), 78, "the corpus has 78 vectors");
    let mut disagreements = Vec::new();
    for vector in &vectors {
        let id = vector["id"].as_str().unwrap();
        let out = payhook().args(args_for(vector, &sig_dir)).output().unwrap();
        let expect_valid = vector["expect"] == "valid";
        let code = out.status.code();
        let report: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
        let ok = if expect_valid {
            code == Some(0) && report["valid"] == true
        } else {
            code == Some(1) && report["valid"] == false && report["reason"].is_string()
        };
        if !ok {
            disagreements.push(format!(
                "{id}: expected {}, exit {code:?}, stdout {}, stderr {}",
                vector["expect"],
                String::from_utf8_lossy(&out.stdout).trim(),
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
    }
    assert!(disagreements.is_empty(), "{}", disagreements.join("\n"));
}

#[test]
fn verify_usage_errors_exit_2() {
    let out = payhook()
        .args(["verify", "--provider", "adyen", "--body-file", "x"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let body = scratch("usage.body");
    std::fs::write(&body, "{}").unwrap();
    let out = payhook()
        .args(["verify", "--provider", "stripe", "--body-file"])
        .arg(&body)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(2),
        "stripe without --secret is a usage error"
    );
    let out = payhook()
        .args([
            "verify",
            "--provider",
            "stripe",
            "--secret",
            "s",
            "--body-file",
        ])
        .arg(scratch("missing-file"))
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(2),
        "an unreadable body file is a usage error"
    );
}

#[test]
fn verify_reports_invalid_as_json_with_reason() {
    let body = scratch("invalid.body");
    std::fs::write(&body, r#"{"id":"evt_1"}"#).unwrap();
    let out = payhook()
        .args([
            "verify",
            "--provider",
            "stripe",
            "--secret",
            "whsec_x",
            "--tolerance",
            "0",
        ])
        .args(["--header", "Stripe-Signature: t=1,v1=00", "--body-file"])
        .arg(&body)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["valid"], false);
    assert_eq!(report["reason"], "no_matching_signature");
    assert!(report["message"].as_str().is_some_and(|m| !m.is_empty()));
}
