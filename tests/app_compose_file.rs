//! `rrun app compose config` / `rrun app config`: compose files read,
//! checked and printed resolved by the binary; a bad file is one line on
//! stderr naming the file, the line and the key, a non-zero exit, never a
//! panic, and nothing made. (Every form and error in detail: the unit
//! tests, `cargo test --bin rrun app::compose`.)

#[macro_use]
mod common;

use common::app::*;
use common::*;
use std::fs;
use std::path::Path;
use std::time::Duration;

/// `rrun app ARGS` run in `dir`, with only the variables given.
fn in_dir(env: &Env, dir: &Path, vars: &[(&str, &str)], args: &[&str]) -> Output {
    let mut c = env.cmd(args);
    c.current_dir(dir)
        .env_clear()
        .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin");
    for (k, v) in vars {
        c.env(k, v);
    }
    run_timeout(c, Duration::from_secs(30))
}

const GOOD: &str = r#"
name: shop
x-defaults: &defaults
  restart: on-failure:3
  stop_grace_period: 1m30s
services:
  db:
    <<: *defaults
    image: oci:./images/db:latest
    command: sh -c 'touch /tmp/ready; exec sleep 1000'
    environment:
      PASSWORD: ${DB_PASSWORD:-secret}
    healthcheck:
      test: ["CMD", "test", "-f", "/tmp/ready"]
      interval: 1s
      retries: 5
    volumes: [data:/var/lib/db]
  migrate:
    image: ./images/migrate.tar
    command: ["sh", "-c", "exit 0"]
  web:
    image: ./images/web.tar
    depends_on:
      db: {condition: service_healthy}
      migrate: {condition: service_completed_successfully}
    ports: ["${WEB_PORT}:80"]
    x-comment: extension fields are ignored
volumes:
  data:
"#;

fn project(dir: &Path, file: &str, text: &str) {
    fs::write(dir.join(file), text).unwrap();
}

#[test]
fn config_prints_the_resolved_file() {
    let env = Env::new();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    project(d, "compose.yaml", GOOD);
    fs::write(d.join(".env"), "WEB_PORT=8080\nDB_PASSWORD=fromdotenv\n").unwrap();
    let out = in_dir(
        &env,
        d,
        &[("DB_PASSWORD", "fromenv")],
        &["compose", "config"],
    );
    out.ok();
    let y = &out.stdout;
    assert!(y.starts_with("name: \"shop\"\n"), "{y}");
    for want in [
        &format!("image: \"oci:{}/images/db:latest\"", d.display()),
        "PASSWORD: \"fromenv\"",
        "- \"8080:80\"",
        "condition: \"service_healthy\"",
        "condition: \"service_completed_successfully\"",
        "stop_grace_period: \"90s\"",
        "restart: \"on-failure:3\"",
        "- \"data:/var/lib/db\"",
        "name: \"shop_data\"",
        "name: \"shop_default\"",
    ] {
        assert!(y.contains(want), "{want} not in:\n{y}");
    }
    assert!(!y.contains("x-comment") && !y.contains("x-defaults"), "{y}");
    assert!(out.stderr.is_empty(), "{}", out.stderr);

    // The alias prints the same; --services the names in the file's order.
    let alias = in_dir(&env, d, &[("DB_PASSWORD", "fromenv")], &["config"]);
    assert_eq!(alias.ok().stdout, *y);
    let names = in_dir(&env, d, &[], &["compose", "config", "--services"]);
    assert_eq!(names.ok().stdout, "db\nmigrate\nweb\n");

    // What config prints is a compose file that resolves to itself.
    project(d, "resolved.yaml", y);
    let again = in_dir(
        &env,
        d,
        &[],
        &[
            "compose",
            "-f",
            "resolved.yaml",
            "--env-file",
            "/dev/null",
            "config",
        ],
    );
    assert_eq!(again.ok().stdout, *y);

    // config makes nothing: not even an app root.
    let root = d.join("no-root");
    let mut c = std::process::Command::new(rrun_bin());
    c.args(["app", "--app-root"])
        .arg(&root)
        .args(["compose", "config", "--services"])
        .current_dir(d);
    run_timeout(c, Duration::from_secs(30)).ok();
    assert!(!root.exists());
    // No app, network or volume.
    assert!(env.names().is_empty());
    let nets = env.app(&["network", "ls", "--format", "json"]);
    assert!(!nets.ok().stdout.contains("shop"), "{}", nets.stdout);
}

#[test]
fn files_variables_and_the_project_name() {
    let env = Env::new();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // The default file is looked for in the current directory.
    project(
        d,
        "docker-compose.yml",
        "services:\n  s:\n    image: ./s.tar\n    environment:\n      - A=1\n      - B=${B}\n",
    );
    project(
        d,
        "override.yaml",
        "services:\n  s:\n    environment: [A=2]\n",
    );
    fs::write(d.join("vars"), "B=fromfile\n").unwrap();
    let out = in_dir(
        &env,
        d,
        &[("COMPOSE_PROJECT_NAME", "fromenv")],
        &[
            "compose",
            "-f",
            "docker-compose.yml",
            "-f",
            "override.yaml",
            "--env-file",
            "vars",
            "config",
        ],
    );
    out.ok();
    assert!(
        out.stdout.starts_with("name: \"fromenv\"\n"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("A: \"2\"") && out.stdout.contains("B: \"fromfile\""),
        "{}",
        out.stdout
    );

    // -p wins; an unset variable is "" with one warning naming it.
    let out = in_dir(
        &env,
        d,
        &[("COMPOSE_PROJECT_NAME", "fromenv")],
        &["compose", "-p", "given", "config"],
    );
    out.ok();
    assert!(out.stdout.starts_with("name: \"given\"\n"));
    assert!(out.stdout.contains("B: \"\""), "{}", out.stdout);
    assert_eq!(out.stderr.lines().count(), 1, "{}", out.stderr);
    assert!(
        out.stderr.contains("variable B is not set"),
        "{}",
        out.stderr
    );

    // No file: one line saying where it looked.
    let empty = tempfile::tempdir().unwrap();
    let out = in_dir(&env, empty.path(), &[], &["compose", "config"]);
    out.failed();
    assert!(out.stderr.contains("no compose file in"), "{}", out.stderr);
}

#[test]
fn bad_files_are_one_line_naming_file_line_and_key() {
    let env = Env::new();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let cases: &[(&str, &str)] = &[
        (
            "services:\n  web:\n    image: a.tar\n    buld: .\n",
            "bad.yaml:4: services.web.buld: unknown key",
        ),
        (
            "services:\n  web:\n    image: a.tar\n    depends_on: [dbb]\n  db:\n    image: a.tar\n",
            "bad.yaml:4: services.web.depends_on: unknown service dbb",
        ),
        (
            "services:\n  web:\n    image: a.tar\n    healthcheck:\n      test: [CMD, 'true']\n      interval: 10 seconds\n",
            "bad.yaml:6: services.web.healthcheck.interval: invalid duration \"10 seconds\"",
        ),
        (
            "services:\n  web:\n    image: a.tar\n    ports:\n      - \"80\"\n",
            "bad.yaml:5: services.web.ports[0]: \"80\": rrun publishes a port on a host port you choose",
        ),
        (
            "services:\n  web:\n    image: a.tar\n    ports: [\"8080:99999\"]\n",
            "bad.yaml:4: services.web.ports[0]: ",
        ),
        (
            "services:\n  web:\n    image: a.tar\n    environment:\n      KEY: ${SECRET:?give SECRET}\n",
            "bad.yaml:5: services.web.environment.KEY: required variable SECRET is missing a value: give SECRET",
        ),
        (
            "services:\n  web:\n    image: a.tar\n    command: echo ${oops\n",
            "bad.yaml:4: services.web.command: invalid interpolation format",
        ),
        (
            "services:\n  web:\n    build: .\n",
            "bad.yaml:3: services.web.build: rrun does not build images",
        ),
        ("services:\n  web: [\n", "bad.yaml:"),
        (
            "services:\n  web:\n    image: a.tar\n    image: b.tar\n",
            "bad.yaml:4: duplicate key \"image\"",
        ),
        ("\u{0}\u{1}", "bad.yaml:"),
    ];
    for (text, want) in cases {
        project(d, "bad.yaml", text);
        let out = in_dir(&env, d, &[], &["compose", "-f", "bad.yaml", "config"]);
        out.failed();
        assert_eq!(out.code, Some(1), "{out}");
        assert!(out.stdout.is_empty(), "{out}");
        assert_eq!(out.stderr.lines().count(), 1, "{text}: {out}");
        assert!(
            out.stderr.starts_with(&format!("rrun: {want}")),
            "{text}: want {want:?}, got {}",
            out.stderr
        );
        assert!(!out.stderr.contains("panicked"), "{out}");
    }
    assert!(env.names().is_empty());
}
