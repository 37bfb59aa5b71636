//! Reading a file to import, safely.
