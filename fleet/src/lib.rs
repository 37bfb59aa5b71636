//! The fleet object, `pam_otpgate_fleet.so`: the whole login for a site
//! whose store is a PostgreSQL database, loaded by `pam_otpgate.so` for
//! such a login only, so the module every login maps leaves the database
//! client out. The contract and the code are `otpgate::pam::fleet`'s.

otpgate::fleet_object!();
