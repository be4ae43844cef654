//! How long loading a board and a full boot + reboot of the device model take.

use criterion::{criterion_group, criterion_main, Criterion};
use sim::kernel::{boot_board, generic_driver, Driver, GenericDriver, Kernel};
use sim::{board_report, kbox_a230_ls, Board, Dmesg};
use smmu_sync::Arc;

fn benches(c: &mut Criterion) {
    // The real blobs from ../shared when present (the loader's figures in BENCHMARKS.md are
    // theirs); skipped with a message otherwise.
    if let Some(kbox) = lab_fixtures::shared::board("kontron-kbox-a-230-ls.dtb") {
        c.bench_function("from_dtb kbox (29.6 KB)", |b| {
            b.iter(|| Board::from_dtb(&kbox).unwrap())
        });
    }
    if let Some(sdm) = lab_fixtures::shared::board("sdm845-db845c.dtb") {
        c.bench_function("from_dtb sdm845-db845c", |b| {
            b.iter(|| Board::from_dtb(&sdm).unwrap())
        });
    }
    let board = kbox_a230_ls();
    c.bench_function("board_report kbox", |b| b.iter(|| board_report(&board)));
    c.bench_function("boot + kernel_restart kbox", |b| {
        b.iter(|| {
            let k = Kernel::new(Arc::new(Dmesg::new()));
            let smmu = |_| {
                Arc::new(GenericDriver {
                    name: "arm-smmu".into(),
                    has_shutdown: true,
                    binds: true,
                }) as Arc<dyn Driver>
            };
            boot_board(&k, &board, &smmu, &|_, m| generic_driver(m), true).unwrap();
            k.kernel_restart(None)
        })
    });
}

criterion_group!(g, benches);
criterion_main!(g);
