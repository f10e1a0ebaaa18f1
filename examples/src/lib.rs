//! Glue shared by the lvskit binaries: `lvskitd`, `lvskit-app` and
//! `lvskit-lab`. This is the only package that combines the four libraries.
