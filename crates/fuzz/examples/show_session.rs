//! Prints a `session` input as steps and replays it, or, given a corpus directory, how many of
//! its inputs reach each flow: `cargo run --example show_session -- FILE|DIR`.

use mqtts_core_fuzz::input::Input;
use mqtts_core_fuzz::session::{self, Step};

fn main() {
    let path = std::env::args()
        .nth(1)
        .expect("usage: show_session FILE|DIR");
    let path = std::path::Path::new(&path);
    if path.is_dir() {
        let mut reached = [0usize; 8];
        let mut total = 0;
        for entry in std::fs::read_dir(path).expect("read dir") {
            let data = std::fs::read(entry.expect("entry").path()).expect("read input");
            let s = session::run_script(&data);
            let counts = [
                s.connected,
                s.published,
                s.subscribed,
                s.unsubscribed,
                s.messages,
                s.skipped,
                s.errors,
                s.sent_packets,
            ];
            for (r, c) in reached.iter_mut().zip(counts) {
                *r += usize::from(c > 0);
            }
            total += 1;
        }
        let names = [
            "connected",
            "published",
            "subscribed",
            "unsubscribed",
            "messages",
            "skipped",
            "errors",
            "sent packets",
        ];
        println!("{total} inputs; inputs reaching:");
        for (name, n) in names.iter().zip(reached) {
            println!("  {name:>13}: {n}");
        }
        return;
    }
    let data = std::fs::read(path).expect("read input");
    let mut input = Input::new(&data);
    println!("config: {:?}", session::config(input.u8()));
    while !input.is_empty() {
        println!("{:?}", Step::read(&mut input));
    }
    println!("{:?}", session::run_script(&data));
}
