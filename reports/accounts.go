package reports

import (
	"context"
	"sort"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/permiso/permiso"
)

// UserStats is the answer of GET /users/stats/overview: users now;
// recent registrations are those of the last 30 days.
type UserStats struct {
	TotalUsers          int `json:"total_users"`
	ActiveUsers         int `json:"active_users"`
	VerifiedUsers       int `json:"verified_users"`
	LockedUsers         int `json:"locked_users"`
	RecentRegistrations int `json:"recent_registrations"`
}

// UserStats computes the users overview (one query).
func (s *Service) UserStats(ctx context.Context) (UserStats, error) {
	now := s.now()
	st, err := s.store.UserStats(ctx, now, now.Add(-30*24*time.Hour))
	if err != nil {
		return UserStats{}, err
	}
	return UserStats{TotalUsers: st.Total, ActiveUsers: st.Active, VerifiedUsers: st.Verified,
		LockedUsers: st.Locked, RecentRegistrations: st.CreatedSince}, nil
}

// NameCount is a name with a count.
type NameCount struct {
	Name  string `json:"name"`
	Count int    `json:"count"`
}

// RoleStats is the answer of GET /roles/stats: the numbers of roles and
// scopes, the five roles held by most users and the five scopes held by
// fewest roles (ties by name).
type RoleStats struct {
	TotalRoles      int         `json:"total_roles"`
	TotalScopes     int         `json:"total_scopes"`
	MostCommonRoles []NameCount `json:"most_common_roles"`
	LeastUsedScopes []NameCount `json:"least_used_scopes"`
}

// RoleStats computes the roles overview: the roles and the scopes are
// read concurrently.
func (s *Service) RoleStats(ctx context.Context) (RoleStats, error) {
	var st RoleStats
	var roles []permiso.Role
	var scopes []permiso.Scope
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() (err error) {
		roles, st.TotalRoles, err = s.store.ListRoles(gctx, permiso.RoleFilter{})
		return err
	})
	g.Go(func() (err error) {
		scopes, st.TotalScopes, err = s.store.ListScopes(gctx, permiso.ScopeFilter{})
		return err
	})
	if err := g.Wait(); err != nil {
		return RoleStats{}, err
	}
	rc := make([]NameCount, 0, len(roles))
	for _, r := range roles {
		rc = append(rc, NameCount{r.Name, r.UserCount})
	}
	sort.SliceStable(rc, func(i, j int) bool {
		if rc[i].Count != rc[j].Count {
			return rc[i].Count > rc[j].Count
		}
		return rc[i].Name < rc[j].Name
	})
	sc := make([]NameCount, 0, len(scopes))
	for _, x := range scopes {
		sc = append(sc, NameCount{x.Name, x.RoleCount})
	}
	sort.SliceStable(sc, func(i, j int) bool {
		if sc[i].Count != sc[j].Count {
			return sc[i].Count < sc[j].Count
		}
		return sc[i].Name < sc[j].Name
	})
	st.MostCommonRoles, st.LeastUsedScopes = rc[:min(5, len(rc))], sc[:min(5, len(sc))]
	return st, nil
}
