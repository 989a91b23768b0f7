package httpapi

// identitySchemas are the component schemas of the users, roles and
// scopes routes: the original service's UserResponse, RoleResponse,
// ScopeResponse (with action and resource), and the permission decision.
func identitySchemas() schema {
	roleInfoS := object(schema{"id": uuidStr(), "name": str(), "description": strOrNull()})
	roleScope := object(schema{"id": uuidStr(), "name": str(), "description": strOrNull(), "resource": str(), "action": str()})
	return schema{
		"User": object(schema{
			"id": uuidStr(), "username": str(), "email": str(),
			"first_name": strOrNull(), "last_name": strOrNull(), "display_name": strOrNull(), "bio": strOrNull(),
			"is_active": boolean(), "is_verified": boolean(), "is_superuser": boolean(),
			"full_name":  describe(str(), "\"first last\" when both are set, else display_name, else username."),
			"last_login": dateTimeOrNull(), "created_at": dateTime(), "updated_at": dateTime(),
			"roles":       arrayOf(roleInfoS),
			"scope_names": describe(arrayOf(str()), "Sorted, de-duplicated scopes of the user's current roles."),
			"scopes":      describe(arrayOf(str()), "Same as scope_names."),
		}),
		"RoleScope": roleScope,
		"Role": object(schema{"id": uuidStr(), "name": str(), "description": strOrNull(), "created_at": dateTime(),
			"updated_at": dateTime(), "scopes": arrayOf(ref("RoleScope")), "user_count": integer()}),
		"Scope": object(schema{"id": uuidStr(), "name": describe(str(), "action:resource"), "description": strOrNull(),
			"resource": str(), "action": str(), "created_at": dateTime(), "updated_at": dateTime(), "role_count": integer()}),
		"PermissionDecision": object(schema{"allowed": boolean(), "reason": describe(str(), "Explains the decision itself."),
			"matching_scopes": arrayOf(str()), "user_roles": arrayOf(str())}),
	}
}

// identityOps documents the users, roles and scopes routes (SPEC §5.2,
// issue 4).
func identityOps() []op {
	users, perms := scopeAdminUsers, scopeAdminPermissions
	user, role, scope, decision := ref("User"), ref("Role"), ref("Scope"), ref("PermissionDecision")
	userCreate := input(schema{
		"username":     describe(between(str(), 3, 50), "[a-zA-Z0-9_-]; stored in lower case."),
		"email":        schema{"type": "string", "format": "email", "maxLength": 254},
		"password":     schema{"type": "string", "format": "password", "description": "PASSWORD_* policy, not a common password, not containing the username."},
		"first_name":   schema{"type": []string{"string", "null"}, "maxLength": 100},
		"last_name":    schema{"type": []string{"string", "null"}, "maxLength": 100},
		"display_name": schema{"type": []string{"string", "null"}, "maxLength": 100},
		"bio":          schema{"type": []string{"string", "null"}, "maxLength": 1000},
	}, "username", "email", "password")
	adminCreate := input(schema{
		"username": userCreate["properties"].(schema)["username"], "email": userCreate["properties"].(schema)["email"],
		"password": userCreate["properties"].(schema)["password"], "first_name": userCreate["properties"].(schema)["first_name"],
		"last_name": userCreate["properties"].(schema)["last_name"], "display_name": userCreate["properties"].(schema)["display_name"],
		"bio": userCreate["properties"].(schema)["bio"], "is_active": boolean(), "is_verified": boolean(),
		"is_superuser": describe(boolean(), "Only a superuser may create a superuser."),
		"role_ids":     describe(arrayOf(uuidStr()), "Absent: role user. Unknown ids are a 400 and nothing is created."),
	}, "username", "email", "password")
	profile := schema{
		"email": schema{"type": []string{"string", "null"}, "format": "email"}, "first_name": schema{"type": []string{"string", "null"}, "maxLength": 100},
		"last_name": schema{"type": []string{"string", "null"}, "maxLength": 100}, "display_name": schema{"type": []string{"string", "null"}, "maxLength": 100},
		"bio": schema{"type": []string{"string", "null"}, "maxLength": 1000},
	}
	update := schema{}
	for k, v := range profile {
		update[k] = v
	}
	update["is_active"], update["is_verified"] = boolean(), boolean()
	update["is_superuser"] = describe(boolean(), "Changing it needs a superuser.")
	update["role_ids"] = describe(arrayOf(uuidStr()), "Replaces the user's roles.")
	page := func(key string, item schema) schema {
		return object(schema{key: arrayOf(item), "total": integer(), "page": integer(), "per_page": integer(), "pages": integer()})
	}
	message := object(schema{"message": str()})
	password := input(schema{"current_password": schema{"type": "string", "format": "password"},
		"new_password": schema{"type": "string", "format": "password"}}, "new_password")
	uid := pathParam("user_id", "User id (UUID); a malformed id is a 404.")
	rid := pathParam("role_id", "Role id (UUID).")
	sid := pathParam("scope_id", "Scope id (UUID).")
	roleBody := input(schema{"name": describe(between(str(), 2, 50), "Letters, digits, '_', '.', '-'."),
		"description": schema{"type": []string{"string", "null"}, "maxLength": 500}, "scope_ids": arrayOf(uuidStr())})
	scopeBody := input(schema{"name": describe(str(), "action:resource (lower case); or give action and resource."),
		"description": schema{"type": []string{"string", "null"}, "maxLength": 500}, "action": str(), "resource": str()})
	nameCount := object(schema{"name": str(), "count": integer()})
	selfNote := " A user may also call it for their own id (as themselves, not as an administrator)."
	return []op{
		{method: "POST", path: "{api}/users/register", tag: "users", summary: "Register (role user, unverified)",
			desc: "RATE_LIMIT_REGISTER per client IP. Privileged fields are ignored. A verification mail is sent.",
			auth: "public", body: userCreate, status: 201, response: user, errors: []int{409, 429, 503}},
		{method: "POST", path: "{api}/users/password-reset/request", tag: "users", summary: "Mail a password-reset link",
			desc: "The same answer whether or not the address belongs to an account; the link expires after 1 hour.",
			auth: "public", body: input(schema{"email": schema{"type": "string", "format": "email"}}, "email"), response: message, errors: []int{429, 503}},
		{method: "POST", path: "{api}/users/password-reset/confirm", tag: "users", summary: "Set a new password with a mailed token",
			desc: "The token is single-use. Every session of the user ends and the lockout is lifted. A bad, used or expired token is 400 invalid_token.",
			auth: "public", body: input(schema{"token": str(), "new_password": schema{"type": "string", "format": "password"}}, "token", "new_password"),
			response: message, errors: []int{400, 429, 503}},
		{method: "POST", path: "{api}/users/email-verification/request", tag: "users", summary: "Mail a new verification link",
			desc: "The same answer whether or not the address belongs to an unverified account; the link expires after 48 hours.",
			auth: "public", body: input(schema{"email": schema{"type": "string", "format": "email"}}, "email"), response: message, errors: []int{429, 503}},
		{method: "POST", path: "{api}/users/email-verification/confirm", tag: "users", summary: "Verify the email with a mailed token",
			auth: "public", body: input(schema{"token": str()}, "token"), response: message, errors: []int{400, 429, 503}},
		{method: "GET", path: "{api}/users/me", tag: "users", summary: "The caller's account", auth: "user", response: user},
		{method: "GET", path: "{api}/users/profile", tag: "users", summary: "Same as /users/me", auth: "user", response: user},
		{method: "PUT", path: "{api}/users/me", tag: "users", summary: "Change the caller's profile",
			desc: "Profile fields only, for everyone: role_ids, is_active, is_verified or is_superuser in the body is a 403. A new email makes the account unverified and mails a link. username and password are 422.",
			auth: "user", body: input(update), response: user, errors: []int{409, 413, 422}},
		{method: "PUT", path: "{api}/users/me/password", tag: "users", summary: "Change the caller's password",
			desc: "current_password is required (400 when wrong). A wrong current password counts as a failed login attempt: after MAX_LOGIN_ATTEMPTS the account is locked (423 account_locked) for changes and logins alike. Every other session of the user ends; the current one stays.",
			auth: "user", body: password, response: message, errors: []int{400, 413, 422, 423}, errorDesc: tooManyAttempts},
		{method: "GET", path: "{api}/users", tag: "users", summary: "List users",
			desc: "Ordered by created_at, id.", auth: users,
			params: append([]param{
				query("search", "Substring of username, email, first, last or display name (case-insensitive).", schema{"type": "string", "maxLength": maxSearchLength}),
				query("is_active", "Filter by status.", boolean()),
				query("is_verified", "Filter by verification.", boolean()),
				query("role_id", "Only holders of this role.", uuidStr()),
			}, pagingParams...),
			response: page("users", user)},
		{method: "POST", path: "{api}/users", tag: "users", summary: "Create a user",
			desc: "Everything is validated first (422), unknown role ids are a 400, then the user and their roles are written in one transaction.",
			auth: users, body: adminCreate, status: 201, response: user, errors: []int{400, 409}},
		{method: "GET", path: "{api}/users/stats/overview", tag: "users", summary: "User counts", auth: users,
			response: object(schema{"total_users": integer(), "active_users": integer(), "verified_users": integer(),
				"locked_users": integer(), "recent_registrations": describe(integer(), "Created in the last 30 days.")})},
		{method: "GET", path: "{api}/users/{user_id}", tag: "users", summary: "Get a user",
			desc: selfNote[1:], auth: users, params: []param{uid}, response: user},
		{method: "PUT", path: "{api}/users/{user_id}", tag: "users", summary: "Change a user",
			desc: "Administrators change every field (is_superuser only by a superuser; never their own is_active). A user acting on their own record changes profile fields only: role_ids, is_active, is_verified or is_superuser in the body is a 403 and nothing changes. Disabling a user ends their sessions and tokens." + selfNote,
			auth: users, params: []param{uid}, body: input(update), response: user, errors: []int{400, 409}},
		{method: "DELETE", path: "{api}/users/{user_id}", tag: "users", summary: "Delete a user",
			desc: "A user may delete their own account; an administrator may not delete their own (403)." + selfNote,
			auth: users, params: []param{uid}, status: 204},
		{method: "PUT", path: "{api}/users/{user_id}/password", tag: "users", summary: "Set a user's password",
			desc: "For one's own id: current_password required (a wrong one counts toward the login lockout; 423 while locked), other sessions end. An administrator setting another user's password gives none; every session of that user ends and the lockout is lifted." + selfNote,
			auth: users, params: []param{uid}, body: password, response: message, errors: []int{400, 423}, errorDesc: tooManyAttempts},
		{method: "PUT", path: "{api}/users/{user_id}/roles", tag: "users", summary: "Replace a user's roles",
			auth: users, params: []param{uid}, body: input(schema{"role_ids": arrayOf(uuidStr())}, "role_ids"), response: user, errors: []int{400}},
		{method: "POST", path: "{api}/users/{user_id}/unlock", tag: "users", summary: "Lift a login lockout",
			auth: users, params: []param{uid}, response: object(schema{"message": str(), "user": user})},

		{method: "GET", path: "{api}/roles", tag: "roles", summary: "List roles", desc: "Ordered by name, id.", auth: users,
			params: append([]param{query("search", "Substring of name or description.", schema{"type": "string", "maxLength": maxSearchLength}),
				query("scope_id", "Only roles holding this scope.", uuidStr())}, pagingParams...),
			response: page("roles", role)},
		{method: "POST", path: "{api}/roles", tag: "roles", summary: "Create a role", auth: users, body: roleBody, status: 201,
			response: role, errors: []int{400, 409}},
		{method: "GET", path: "{api}/roles/stats", tag: "roles", summary: "Role and scope counts", auth: users,
			response: object(schema{"total_roles": integer(), "total_scopes": integer(),
				"most_common_roles": arrayOf(nameCount), "least_used_scopes": arrayOf(nameCount)})},
		{method: "GET", path: "{api}/roles/defaults", tag: "roles", summary: "The built-in roles and seeded scopes", auth: users,
			response: object(schema{"roles": arrayOf(str()), "scopes": arrayOf(str()), "description": str()})},
		{method: "GET", path: "{api}/roles/{role_id}", tag: "roles", summary: "Get a role", auth: users, params: []param{rid}, response: role},
		{method: "PUT", path: "{api}/roles/{role_id}", tag: "roles", summary: "Change a role",
			desc: "scope_ids, when given, replaces the scopes. Built-in roles (user, admin, service) keep their names (409).",
			auth: users, params: []param{rid}, body: roleBody, response: role, errors: []int{400, 409}},
		{method: "DELETE", path: "{api}/roles/{role_id}", tag: "roles", summary: "Delete a role",
			desc: "409 while any user holds it, and for the built-in roles.", auth: users, params: []param{rid}, status: 204, errors: []int{409}},
		{method: "PUT", path: "{api}/roles/{role_id}/{sub}", tag: "roles", summary: "Replace a role's scopes (PUT /roles/{role_id}/scopes)",
			desc: "{sub} is always \"scopes\" (the route is registered this way so that it can live next to PUT /roles/scopes/{scope_id}).",
			auth: users, params: []param{rid, {name: "sub", in: "path", desc: "Always \"scopes\".", schema: enum("scopes"), required: true}},
			body: input(schema{"scope_ids": arrayOf(uuidStr())}, "scope_ids"), response: role, errors: []int{400}},
		{method: "GET", path: "{api}/roles/scopes", tag: "roles", summary: "List scopes", desc: "Ordered by name, id.", auth: users,
			params: append([]param{query("search", "Substring of name or description.", schema{"type": "string", "maxLength": maxSearchLength}),
				query("resource", "Exact resource.", str()), query("action", "Exact action.", str())}, pagingParams...),
			response: page("scopes", scope)},
		{method: "POST", path: "{api}/roles/scopes", tag: "roles", summary: "Create a scope", auth: users, body: scopeBody, status: 201,
			response: scope, errors: []int{409}},
		{method: "GET", path: "{api}/roles/scopes/{scope_id}", tag: "roles", summary: "Get a scope", auth: users, params: []param{sid}, response: scope},
		{method: "PUT", path: "{api}/roles/scopes/{scope_id}", tag: "roles", summary: "Change a scope",
			desc: "Built-in scopes keep their names (409).", auth: users, params: []param{sid}, body: scopeBody, response: scope, errors: []int{409}},
		{method: "DELETE", path: "{api}/roles/scopes/{scope_id}", tag: "roles", summary: "Delete a scope",
			desc: "409 while any role holds it, and for the built-in scopes.", auth: users, params: []param{sid}, status: 204, errors: []int{409}},
		{method: "POST", path: "{api}/roles/permissions/check", tag: "roles", summary: "May a user do action on resource?",
			desc: "Decided on the user's current roles: administrators may do anything; write/admin on roles, permissions or scopes needs admin:users or admin:system; otherwise action:resource, admin:resource, or (for an action other than admin) admin:system.",
			auth: perms, body: input(schema{"user_id": uuidStr(), "resource": str(), "action": str()}, "user_id", "resource", "action"),
			response: decision, errors: []int{404}},
		{method: "POST", path: "{api}/roles/permissions/check-bulk", tag: "roles", summary: "Several permission checks for one user",
			auth: perms, body: input(schema{"user_id": uuidStr(), "permissions": arrayOf(input(schema{"resource": str(), "action": str()}, "resource", "action"))}, "user_id", "permissions"),
			response: object(schema{"results": arrayOf(decision), "user_roles": arrayOf(str()), "user_scopes": arrayOf(str())}), errors: []int{404}},
		{method: "GET", path: "{api}/roles/permissions/user/{user_id}", tag: "roles", summary: "A user's permissions by resource",
			auth: perms, params: []param{uid},
			response: object(schema{"user_id": uuidStr(), "username": str(), "is_superuser": boolean(), "is_admin": boolean(),
				"roles": arrayOf(str()), "scopes": arrayOf(str()), "global_permissions": arrayOf(str()),
				"resources": arrayOf(object(schema{"resource": str(), "actions": arrayOf(str()), "scopes": arrayOf(str())}))})},
	}
}
