//! The `likeness` binary end to end: doctor, inspect, global options, linking.
mod common;

use std::process::{Command, Output};

use common::likeness;

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}
fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn doctor_reports_libtorch_threads_and_dataset_counts() {
    common::fashion_train();
    common::johns();
    let out = likeness(&["doctor", "--json", "--threads", "2", "--device", "cpu"]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        v["libtorch_version"]
            .as_str()
            .unwrap()
            .starts_with("2.11.0"),
        "{v}"
    );
    assert_eq!(v["threads"], 2);
    let plan = &v["thread_plan"];
    assert_eq!(
        (&plan["torch"], &plan["loader"], &plan["why"]),
        (&2.into(), &2.into(), &"--threads".into()),
        "{v}"
    );
    assert_eq!(v["device"], "cpu");
    assert_eq!(v["ok"], true);
    let ds = v["datasets"].as_array().unwrap();
    let count = |name: &str| {
        let d = ds.iter().find(|d| d["name"] == name).unwrap();
        (d["items"].as_u64().unwrap(), d["classes"].as_u64().unwrap())
    };
    assert_eq!(count("fashion-mnist-train"), (60_000, 10));
    assert_eq!(count("fashion-mnist-test"), (10_000, 10));
    assert_eq!(count("johns"), (55, 5));

    let text = likeness(&["doctor"]);
    assert!(text.status.success());
    let t = stdout(&text);
    assert!(t.contains("libtorch   2.11.0"), "{t}");
    assert!(t.contains("60000 images"), "{t}");
}

#[test]
fn torch_threads_spin_briefly_unless_the_user_chose() {
    // Spinning OpenMP threads starve whatever else runs: two trainings at
    // once took 9x as long as one (app/src/openmp.rs).
    let wait = |bin: &str, env: &[(&str, &str)]| {
        let mut cmd = std::process::Command::new(bin);
        cmd.args(["doctor", "--json"])
            .env_remove("GOMP_SPINCOUNT")
            .env_remove("OMP_WAIT_POLICY");
        for (k, v) in env {
            cmd.env(k, v);
        }
        let out = cmd.output().unwrap();
        let v: serde_json::Value = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("{e}: {}{}", stdout(&out), stderr(&out)));
        v["openmp_wait"].as_str().unwrap().to_string()
    };
    let front = env!("CARGO_BIN_EXE_likeness");
    let torch = env!("CARGO_BIN_EXE_likeness-torch");
    assert_eq!(wait(front, &[]), "GOMP_SPINCOUNT=1000");
    // Run directly, the torch binary sets it for itself.
    assert_eq!(wait(torch, &[]), "GOMP_SPINCOUNT=1000");
    // A choice of the user's stays.
    assert_eq!(
        wait(front, &[("OMP_WAIT_POLICY", "PASSIVE")]),
        "OMP_WAIT_POLICY=PASSIVE"
    );
    assert_eq!(
        wait(torch, &[("GOMP_SPINCOUNT", "50")]),
        "GOMP_SPINCOUNT=50"
    );
}

#[test]
fn asking_for_a_missing_cuda_device_fails_with_a_hint() {
    // On a CPU machine cuda is absent; on a GPU machine cuda:99 is.
    let out = likeness(&["doctor", "--device", "cuda:99"]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert!(stdout(&out).contains("NOT USABLE"));
    assert!(stdout(&out).contains("cuda:99"));
}

#[test]
fn help_says_what_the_tool_is_for() {
    // Both binaries once opened with the app crate's description for
    // developers ("the torch-free application of likeness: every command's
    // arguments, ...").
    for exe in [
        env!("CARGO_BIN_EXE_likeness"),
        env!("CARGO_BIN_EXE_likeness-torch"),
    ] {
        let out = Command::new(exe).arg("--help").output().unwrap();
        assert!(out.status.success());
        let first = stdout(&out).lines().next().unwrap_or_default().to_string();
        assert!(
            first.starts_with("likeness: learn what looks alike from labelled images"),
            "{exe}: {first}"
        );
    }
    // A command's own options first, the machine's apart after them (they
    // were interleaved: --data, --device, --out, --threads, ...).
    let help = stdout(&likeness(&["regions", "--help"]));
    let at = |s: &str| help.find(s).unwrap_or_else(|| panic!("{s} not in {help}"));
    let heading = at("Machine options (every command):");
    assert!(
        at("--data") < heading && at("--skip-bad") < heading,
        "{help}"
    );
    assert!(
        at("--device") > heading && at("--loader-threads") > heading,
        "{help}"
    );
}

#[test]
fn bad_global_options_are_usage_errors() {
    let out = likeness(&["doctor", "--device", "tpu"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("expected auto, cpu, cuda or cuda:N"),
        "{}",
        stderr(&out)
    );
    for n in ["0", "100000"] {
        let out = likeness(&["doctor", "--threads", n]);
        assert_eq!(out.status.code(), Some(2));
        assert!(
            stderr(&out).contains(&format!("{n} threads: give 1..=1024")),
            "{}",
            stderr(&out)
        );
    }
}

#[test]
fn inspect_lists_classes_and_checks_images() {
    let johns = common::johns();
    let out = likeness(&["inspect", johns.to_str().unwrap(), "--check", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["kind"], "folder");
    assert_eq!(v["items"], 55);
    assert_eq!(v["classes"].as_array().unwrap().len(), 5);
    assert_eq!(v["checked"], true);
    // `--data`, as every other command takes its source, says the same.
    let by_flag = likeness(&["inspect", "--data", johns.to_str().unwrap(), "--json"]);
    assert!(by_flag.status.success(), "{}", stderr(&by_flag));
    let w: serde_json::Value = serde_json::from_slice(&by_flag.stdout).unwrap();
    assert_eq!((&w["kind"], &w["items"]), (&v["kind"], &v["items"]));
    let both = likeness(&["inspect", "a", "--data", "b"]);
    assert_eq!(both.status.code(), Some(2));
    assert_eq!(likeness(&["inspect"]).status.code(), Some(2));

    // Every unusable image in one run, not just the first.
    let dir = tempfile::tempdir().unwrap();
    let good = johns
        .join("John_Simm")
        .read_dir()
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let mut csv = String::from("path,label\n");
    for (i, bytes) in [&b"not an image"[..], &b"\x89PNG\r\n\x1a\n torn"[..]]
        .iter()
        .enumerate()
    {
        let p = dir.path().join(format!("bad{i}.png"));
        std::fs::write(&p, bytes).unwrap();
        csv.push_str(&format!("{},a\n{},b\n", p.display(), good.display()));
    }
    let m = dir.path().join("m.csv");
    std::fs::write(&m, csv).unwrap();
    let out = likeness(&["inspect", m.to_str().unwrap(), "--check"]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(err.contains("2 of 4 images cannot be used"), "{err}");
    assert!(
        err.contains("bad0.png") && err.contains("bad1.png"),
        "{err}"
    );
}

/// A manifest with a `score` column says how many rows are graded, their
/// range and labels (what `train --score-bins` learns from), so that a
/// person grading a few rows of `regions.csv` can count them first; one
/// without grades says nothing of them.
#[test]
fn inspect_counts_graded_rows() {
    let dir = tempfile::tempdir().unwrap();
    let a = common::johns_image("John_Salley");
    let a = a.display();
    let csv = dir.path().join("graded.csv");
    std::fs::write(
        &csv,
        format!(
            "path,label,x,y,w,h,score\n{a},cheek,16,70,36,30,2\n{a},cheek,98,70,36,30,\n\
             {a},under_eye,24,50,36,18,4.5\n{a},eye,24,30,36,18,\n"
        ),
    )
    .unwrap();
    let out = likeness(&["inspect", csv.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("graded: 2 of 4 rows, scores 2 to 4.5 (cheek 1, under_eye 1)"),
        "{text}"
    );
    let out = likeness(&["inspect", csv.to_str().unwrap(), "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        v["graded"],
        serde_json::json!({"rows": 2, "min": 2.0, "max": 4.5,
                           "classes": [["cheek", 1], ["under_eye", 1]]})
    );
    let plain = dir.path().join("plain.csv");
    std::fs::write(&plain, format!("path,label\n{a},x\n{a},y\n")).unwrap();
    let out = likeness(&["inspect", plain.to_str().unwrap(), "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(v.get("graded").is_none(), "{v}");
}

#[test]
fn inspect_of_a_bad_manifest_exits_2_naming_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("faces.csv");
    std::fs::write(&csv, "path,label\nmissing.jpg,alice\n").unwrap();
    let out = likeness(&["inspect", csv.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(err.contains("faces.csv:2"), "{err}");
    assert!(err.contains("missing.jpg"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn front_binary_links_no_libtorch() {
    // `likeness query` must start in milliseconds without mapping libtorch.
    let bin = env!("CARGO_BIN_EXE_likeness");
    let readelf = Command::new("readelf").args(["-d", bin]).output().unwrap();
    let dynamic = stdout(&readelf);
    assert!(dynamic.contains("(NEEDED)"), "{dynamic}");
    for lib in ["torch", "c10", "libstdc++"] {
        assert!(
            !dynamic
                .lines()
                .any(|l| l.contains("(NEEDED)") && l.contains(lib)),
            "the front binary needs {lib}:\n{dynamic}"
        );
    }
}

#[test]
fn torch_commands_run_in_the_sibling_binary_with_the_same_arguments() {
    // `doctor` needs libtorch: the front execs likeness-torch, whose report
    // names the loaded libtorch; argument errors still read "likeness".
    let out = likeness(&["--threads", "1", "doctor", "--json"]);
    let text = stdout(&out);
    let report: serde_json::Value = serde_json::from_str(&text).expect(&text);
    assert_eq!(report["threads"], 1, "{text}");
    // Each pool's own flag reaches the torch binary too.
    let out = likeness(&[
        "--threads",
        "2",
        "--loader-threads",
        "1",
        "doctor",
        "--json",
    ]);
    let text = stdout(&out);
    let report: serde_json::Value = serde_json::from_str(&text).expect(&text);
    assert_eq!(report["thread_plan"]["torch"], 2, "{text}");
    assert_eq!(report["thread_plan"]["loader"], 1, "{text}");
    let out = likeness(&["train", "--no-such-option"]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(err.contains("Usage: likeness train"), "{err}");
}

#[test]
fn torch_binary_finds_libtorch_through_its_rpath_and_links_libtorch_cuda() {
    let bin = env!("CARGO_BIN_EXE_likeness-torch");
    let out = Command::new("ldd")
        .arg(bin)
        .env_remove("LD_LIBRARY_PATH")
        .output()
        .unwrap();
    let text = stdout(&out);
    assert!(!text.contains("not found"), "{text}");
    let torch_cpu = text
        .lines()
        .find(|l| l.contains("libtorch_cpu.so =>"))
        .unwrap_or_else(|| panic!("libtorch_cpu.so not linked:\n{text}"));
    let dir = torch_cpu.split("=>").nth(1).unwrap().trim();
    let dir = std::path::Path::new(dir.split(' ').next().unwrap())
        .parent()
        .unwrap();
    // A CUDA build of libtorch must be linked so that CUDA can be found at run time.
    if dir.join("libtorch_cuda.so").exists() {
        assert!(
            text.contains("libtorch_cuda.so =>"),
            "libtorch_cuda.so not needed:\n{text}"
        );
    }
    let readelf = Command::new("readelf").args(["-d", bin]).output().unwrap();
    let dynamic = stdout(&readelf);
    assert!(
        dynamic.contains(&format!("[{}]", dir.display())),
        "no RPATH/RUNPATH to {}:\n{dynamic}",
        dir.display()
    );
}
