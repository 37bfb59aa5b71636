//! The `otpgate` command.
pub fn main() -> i32 {
    0
}
