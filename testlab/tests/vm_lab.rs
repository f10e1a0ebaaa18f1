//! Tier 3: the VM runner proves itself on Debian's stock kernel (root + qemu).

use anyhow::{Context, Result, ensure};
use lvskit_testlab::vm::{self, Vm};
use std::process::Command;

#[test]
fn vm_command_exit_code_and_output_come_back() -> Result<()> {
    lvskit_testlab::require_root();
    let out = Vm::new()
        .run("uname -r; cat /proc/modules | cut -d' ' -f1 | sort | tr '\\n' ' '; echo; exit 3")?;
    ensure!(out.exit_code == 3, "exit code {}", out.exit_code);
    ensure!(
        out.output.contains("cloud-amd64"),
        "not Debian's cloud kernel:\n{}",
        out.output
    );
    ensure!(
        out.output.contains("ip_vs"),
        "ip_vs not loaded:\n{}",
        out.output
    );
    println!(
        "boot {:.1} s, total {:.1} s",
        out.boot_time.as_secs_f64(),
        out.total_time.as_secs_f64()
    );
    ensure!(
        out.boot_time.as_secs() < 30,
        "boot took {:?}",
        out.boot_time
    );
    Ok(())
}

/// Runs `program args` inside the VM and returns stdout, failing on a
/// non-zero exit.
fn run(program: &str, args: &[&str]) -> Result<String> {
    let out = Command::new(program)
        .args(args)
        .output()
        .with_context(|| format!("start {program}"))?;
    ensure!(
        out.status.success(),
        "{program} {args:?}: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

#[test]
fn vm_ipvs_service_created_with_ipvsadm_reads_back_from_proc() {
    vm::run_test_in_vm(|| {
        ensure!(vm::in_vm());
        run(
            "/usr/sbin/ipvsadm",
            &["-A", "-t", "10.0.0.100:80", "-s", "wrr"],
        )?;
        run(
            "/usr/sbin/ipvsadm",
            &[
                "-a",
                "-t",
                "10.0.0.100:80",
                "-r",
                "10.0.1.1:80",
                "-g",
                "-w",
                "2",
            ],
        )?;
        let table = std::fs::read_to_string("/proc/net/ip_vs")?;
        println!("{table}");
        // Kernel net/netfilter/ipvs/ip_vs_ctl.c ip_vs_info_seq_show: addresses
        // and ports in hex, then the scheduler; destinations with forwarding
        // method and weight.
        ensure!(
            table.contains("TCP  0A000064:0050 wrr"),
            "service missing:\n{table}"
        );
        ensure!(
            table.contains("-> 0A000101:0050      Route   2"),
            "destination missing:\n{table}"
        );
        Ok(())
    });
}
