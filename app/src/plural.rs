//! Counts in messages: `1 photo`, `2 photos`. One helper for both halves
//! (the torch half depends on this crate), so that no message says
//! "1 photos" or "head alone for 1 steps". Machine-read output (CSV, JSON)
//! never goes through it.

/// `n` and the noun, singular for 1 and plural otherwise: `plural(1,
/// "photo")` is `1 photo`, `plural(3, "class")` is `3 classes`. The plural
/// is English's regular one (`-es` after s, x, z, ch, sh; `-ies` after a
/// consonant and y; else `-s`); give an irregular one to [`plural_as`].
pub fn plural(n: usize, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {}", plural_of(noun))
    }
}

/// `n` and `one` or `many`: for nouns whose plural is not regular
/// (`plural_as(n, "person", "people")`).
pub fn plural_as(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// The noun alone, its regular plural for any `n` but 1: where the count
/// is printed apart from it (`{n} face{s}` with other words between).
pub fn noun(n: usize, noun: &str) -> String {
    if n == 1 {
        noun.to_string()
    } else {
        plural_of(noun)
    }
}

fn plural_of(noun: &str) -> String {
    let consonant_y = noun.len() >= 2
        && noun.ends_with('y')
        && !matches!(
            noun.as_bytes()[noun.len() - 2],
            b'a' | b'e' | b'i' | b'o' | b'u'
        );
    if consonant_y {
        format!("{}ies", &noun[..noun.len() - 1])
    } else if ["s", "x", "z", "ch", "sh"]
        .iter()
        .any(|e| noun.ends_with(e))
    {
        format!("{noun}es")
    } else {
        format!("{noun}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_is_singular_and_every_other_count_plural() {
        assert_eq!(plural(1, "photo"), "1 photo");
        assert_eq!(plural(0, "photo"), "0 photos");
        assert_eq!(plural(2, "face"), "2 faces");
        assert_eq!(plural(1, "class"), "1 class");
        assert_eq!(plural(3, "class"), "3 classes");
        assert_eq!(plural(2, "batch"), "2 batches");
        assert_eq!(plural(2, "query"), "2 queries");
        assert_eq!(plural(2, "day"), "2 days");
        assert_eq!(plural_as(1, "person", "people"), "1 person");
        assert_eq!(plural_as(5, "person", "people"), "5 people");
        assert_eq!(noun(1, "step"), "step");
        assert_eq!(noun(4, "step"), "steps");
    }
}
