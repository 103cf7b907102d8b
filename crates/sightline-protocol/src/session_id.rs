//! App session ids: `"<userId>-<packageName>"`.
//!
//! User ids are e-mail addresses and may contain `-`, so the user id is found
//! by stripping the known package suffix, never by splitting on the first `-`.

/// Builds the session id an app sees for a user.
pub fn app_session_id(user_id: &str, package_name: &str) -> String {
    format!("{user_id}-{package_name}")
}

/// Recovers the user id from an app session id, given the package that
/// travels in the same message. `None` when the id does not end in
/// `-<packageName>` or the user part is empty.
pub fn user_from_app_session_id<'a>(session_id: &'a str, package_name: &str) -> Option<&'a str> {
    let user = session_id.strip_suffix(package_name)?.strip_suffix('-')?;
    (!user.is_empty() && !package_name.is_empty()).then_some(user)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strips_package_suffix_even_with_dashes_in_email() {
        let id = app_session_id("mary-jane@ex-ample.com", "com.acme.notes");
        assert_eq!(
            user_from_app_session_id(&id, "com.acme.notes"),
            Some("mary-jane@ex-ample.com")
        );
    }

    #[test]
    fn rejects_mismatched_or_empty() {
        assert_eq!(user_from_app_session_id("a@b.c-com.x", "com.y"), None);
        assert_eq!(user_from_app_session_id("-com.x", "com.x"), None);
        assert_eq!(user_from_app_session_id("a@b.ccom.x", "com.x"), None);
        assert_eq!(user_from_app_session_id("a@b.c-", ""), None);
    }
}
