// Package cache is permiso's in-process read cache (docs/caching.md: user
// status and client records are cached in process with prompt invalidation
// across instances).
//
// Store wraps a permiso.Store and answers the two reads that every bearer
// check and every client authentication make from memory:
//
//   - GetUser(id): Authenticate (is the user active, TokensRevokedBefore),
//     introspection, the refresh grant;
//   - GetServiceClientByClientID(clientID): client-credentials
//     authentication and service-token bearer checks.
//
// Everything else goes straight to the wrapped store. Misses (ErrNotFound
// and other errors) are never cached.
//
// # Invalidation
//
// Every write that goes through the wrapper and can change a cached value
// evicts it locally before the write call returns, then publishes a
// permiso.Change on the ChangeBus so that every other instance evicts it
// too:
//
//   - user writes (CreateUser, UpdateUser, UpdateUserWithRoles, DeleteUser,
//     SetUserRoles, ChangePassword, ChangePasswordIfCurrent; login
//     bookkeeping, lockout mirrors, TokensRevokedBefore and disabling all go
//     through UpdateUser) evict that user;
//   - ClearExpiredLocks (a bulk update of users) evicts every user;
//   - role and scope writes evict every user and every client, since users
//     hold scopes through roles and clients hold scopes directly;
//   - service-client writes (create, update including secret rotation,
//     disabling and the client's revoke-all cut-off TokensRevokedBefore,
//     delete, SetServiceClientScopes, UpdateServiceClientWithScopes)
//     evict every client: they
//     name the client by row id while the cache is keyed by client_id,
//     which an update may change, and clients are few;
//   - migrations evict everything.
//
// Eviction happens whatever the write returned (an error may follow a
// commit). AddClientUsage evicts nothing: it only moves the batched usage
// counters LastUsed and TotalRequests, so these two fields of a cached
// client may lag by up to the TTL. Nothing on the hot paths reads them;
// the admin API's GET /service-clients/{client_id} may show them that
// much behind (they are batched anyway).
//
// # Races
//
// A reader that missed reads the database and then fills the cache. If an
// invalidation of that entry happened after the reader started, the value
// it read may be older than the write, and storing it would bring the
// stale value back until the TTL. Each fill therefore takes a snapshot of
// an invalidation counter (an epoch) before its database read and stores
// its result only if the counter is unchanged, checked under the same
// lock that guards the map. Users are spread over 256 epochs by id, so a
// burst of logins (each one a user write) does not keep every other user
// from being cached; flushing all users or all clients has an epoch of its
// own.
//
// # Bounds
//
// Entries expire TTL after the read that filled them began (a safety net
// for lost messages and for writers that cannot publish). Each map holds at
// most MaxUsers / MaxClients entries; when a new entry does not fit, an
// arbitrary one is evicted (the first one Go's randomized map iteration
// yields): O(1), no bookkeeping, and with a TTL in seconds a working set
// larger than the bound only costs extra database reads.
//
// Cached values are deep copies: callers get their own copy on every call
// (pointers and slices included), so nothing they do can change the cache.
//
// # Staleness
//
// With Redis, another instance's write is seen as soon as its PUBLISH
// arrives (milliseconds). A subscription that drops and comes back
// reports ChangeResync and the cache starts empty again. Without a shared
// bus (no REDIS_URL), writes made by another process (a second instance,
// or `permiso sessions revoke-all`) are seen within the TTL. Reads under
// permiso.WithFreshRead bypass the cache.
//
// LocalBus is the in-process ChangeBus, for when REDIS_URL is not set: it
// connects the caches of one process (and tests) and nothing else.
package cache
