fn main() {
    std::process::exit(otpgate::cli::main());
}
