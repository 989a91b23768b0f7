package main

import (
	"context"
	"errors"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/permiso/permiso"
	"github.com/permiso/permiso/cache"
	"github.com/permiso/permiso/redis"
)

// cachedStore is the store every subcommand works on: the database behind
// the in-process cache of users and service clients (package cache), so
// that every consumer (OAuth core, HTTP API, identity, CLI writers such as
// create-admin and sessions revoke-all) reads through it and publishes its
// writes' invalidations.
type cachedStore struct {
	*cache.Store
	db store
	// bus is the Redis connection of the invalidation bus (nil without
	// REDIS_URL); closed after the subscription has stopped.
	bus *redis.Client
}

// Backup backs the database up (the cache holds nothing to back up).
func (s *cachedStore) Backup(ctx context.Context, outPath string) error {
	return s.db.Backup(ctx, outPath)
}

// Close stops the invalidation subscription, closes the database, then the
// bus connection.
func (s *cachedStore) Close() error {
	err := s.Store.Close()
	if s.bus != nil {
		err = errors.Join(err, s.bus.Close())
	}
	return err
}

// cachedPGStore also exposes the PostgreSQL pool, for registerPoolMetrics.
type cachedPGStore struct {
	*cachedStore
	pool interface{ Pool() *pgxpool.Pool }
}

func (s cachedPGStore) Pool() *pgxpool.Pool { return s.pool.Pool() }

// cacheStore puts the in-process cache in front of a.db (docs/caching.md), with
// CACHE_LOCAL_TTL as its TTL (0: no caching, but writes still publish so
// that other instances hear about them). With REDIS_URL, invalidations
// travel on the Redis channel CACHE_USER_PREFIX+"changes" over a
// connection of their own (a subscription holds one connection, and the
// fail-fast request pool of newAuth stays as it is); without it, on an
// in-process bus, and other processes' writes are seen within the TTL.
// a.Close (which closes a.db) stops the subscription.
func (a *app) cacheStore(ctx context.Context) error {
	var bus permiso.ChangeBus = cache.NewLocalBus()
	rdb, err := openRedis(a.cfg)
	if err != nil {
		return err
	}
	if rdb != nil {
		bus = redis.NewChangeBus(rdb, a.cfg.CacheUserPrefix)
	}
	cs, err := cache.New(ctx, a.db, cache.Options{TTL: a.cfg.CacheLocalTTL, Bus: bus, Logger: a.logger})
	if err != nil {
		if rdb != nil {
			rdb.Close()
		}
		return err
	}
	wrapped := &cachedStore{Store: cs, db: a.db, bus: rdb}
	if pg, ok := a.db.(interface{ Pool() *pgxpool.Pool }); ok {
		a.db = cachedPGStore{cachedStore: wrapped, pool: pg}
		return nil
	}
	a.db = wrapped
	return nil
}
