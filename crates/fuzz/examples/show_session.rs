//! Prints a `session` input as steps, then runs it: `cargo run --example show_session -- FILE`.

use mqtts_core_fuzz::input::Input;
use mqtts_core_fuzz::session::{self, Step};

fn main() {
    let path = std::env::args().nth(1).expect("usage: show_session FILE");
    let data = std::fs::read(&path).expect("read input");
    let mut input = Input::new(&data);
    println!("config: {:?}", session::config(input.u8()));
    while !input.is_empty() {
        println!("{:?}", Step::read(&mut input));
    }
    println!("{:?}", session::run_script(&data));
}
