//! Which exchange wins for a problem's shared coordinates: catopt's ordered exchange
//! (`MPI_Alltoallv` of partial sums and individual contributions, the serial backend's bits)
//! or a plain `MPI_Allreduce` over the shared coordinates (fewer numbers for dense sharing,
//! but MPI chooses the summation order, so the bits would depend on the number of ranks).
//!
//! ```sh
//! cargo build --release --features mpi --example mpi_exchange
//! mpirun -n 2 target/release/examples/mpi_exchange bench/w1.opt
//! ```
//!
//! Times both collectives with the problem's own counts (from `RankSchedule`), many times,
//! in three rounds, and prints microseconds per call on rank 0.

use catopt::lower::lower_text;
use catopt::run::distribute::RankSchedule;
use catopt::run::mpi::MpiTransport;
use catopt::run::plan::Plan;
use catopt::run::transport::Transport;
use std::time::Instant;

fn main() {
    let transport = MpiTransport::initialise().expect("MPI starts");
    let file = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "bench/w1.opt".into());
    let text = std::fs::read_to_string(&file).expect("the .opt file is readable");
    // Data paths in the file are relative to it.
    let directory = std::path::Path::new(&file)
        .parent()
        .map(|p| p.to_path_buf());
    if let Some(directory) = directory.filter(|d| !d.as_os_str().is_empty()) {
        std::env::set_current_dir(directory).expect("the file's directory exists");
    }
    let (_, problem) = lower_text(&text, None).unwrap_or_else(|e| panic!("{e}"));
    let plan = Plan::for_problem(&problem).expect("a plan");
    let ranks = transport.ranks();
    let schedule = RankSchedule::new(&plan, ranks, transport.rank());
    let shared = RankSchedule::traffic(&plan, ranks).shared_coordinates;
    let (send_counts, receive_counts) = schedule.exchange_counts();
    let send = vec![1.0; send_counts.iter().sum()];
    let mut receive = vec![0.0; receive_counts.iter().sum()];
    let sums = vec![1.0; shared];
    let mut summed = vec![0.0; shared];
    let reps = 5000;
    for round in 0..3 {
        transport.min(0); // line the ranks up
        let started = Instant::now();
        for _ in 0..reps {
            transport.exchange(&send, send_counts, &mut receive, receive_counts);
        }
        let ordered = started.elapsed().as_secs_f64() / reps as f64;
        transport.min(0);
        let started = Instant::now();
        for _ in 0..reps {
            transport.all_reduce_sum(&sums, &mut summed);
        }
        let all_reduce = started.elapsed().as_secs_f64() / reps as f64;
        if transport.rank() == 0 {
            println!(
                "{file}, {ranks} ranks, {shared} shared coordinates, round {round}: ordered exchange {:.1} us ({} numbers sent by rank 0), MPI_Allreduce {:.1} us",
                ordered * 1e6,
                send.len(),
                all_reduce * 1e6
            );
        }
    }
}
