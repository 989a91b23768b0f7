package reports

import (
	"context"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/permiso/permiso"
	"github.com/permiso/permiso/oauth2"
)

// Usage is the answer of GET /admin/reports/usage: new and active users,
// logins and failures per day, and tokens issued per grant, over the last
// N UTC days (today included).
type Usage struct {
	Period       UsagePeriod   `json:"report_period"`
	UserActivity UserActivity  `json:"user_activity"`
	Auth         UsageAuth     `json:"authentication"`
	TokensIssued TokensByGrant `json:"tokens_issued"`
	Daily        []UsageDay    `json:"daily"`
}

// UsagePeriod is the period of a usage report: from midnight UTC of its
// first day to now.
type UsagePeriod struct {
	StartDate time.Time `json:"start_date"`
	EndDate   time.Time `json:"end_date"`
	Days      int       `json:"days"`
}

// UserActivity counts the users created in the period and the distinct
// users who logged in or refreshed a token in it.
type UserActivity struct {
	NewUsers    int `json:"new_users"`
	ActiveUsers int `json:"active_users"`
}

// UsageAuth counts logins and failed logins.
type UsageAuth struct {
	Logins       int `json:"logins"`
	FailedLogins int `json:"failed_logins"`
}

// TokensByGrant counts issued tokens by grant.
type TokensByGrant struct {
	Password          int `json:"password"`
	RefreshToken      int `json:"refresh_token"`
	ClientCredentials int `json:"client_credentials"`
	Total             int `json:"total"`
}

// UsageDay is one day of a usage report.
type UsageDay struct {
	Date         string        `json:"date"`
	Logins       int           `json:"logins"`
	FailedLogins int           `json:"failed_logins"`
	TokensIssued TokensByGrant `json:"tokens_issued"`
}

// MaxUsageDays bounds the period of a usage report.
const MaxUsageDays = 365

// Usage computes the usage report of the last days UTC days (1 to
// MaxUsageDays, today included): three independent queries, run
// concurrently.
func (s *Service) Usage(ctx context.Context, days int) (Usage, error) {
	if days < 1 || days > MaxUsageDays {
		return Usage{}, permiso.Invalid("Request validation failed",
			permiso.FieldError{Field: "days", Message: "must be between 1 and 365"})
	}
	now := s.now().UTC()
	start := startOfDay(now).AddDate(0, 0, -(days - 1))
	u := Usage{Period: UsagePeriod{StartDate: start, EndDate: now, Days: days}}
	var rows []permiso.AuditCount
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		us, err := s.store.UserStats(gctx, now, start)
		u.UserActivity.NewUsers = us.CreatedSince
		return err
	})
	g.Go(func() (err error) {
		u.UserActivity.ActiveUsers, err = s.store.CountAuditActors(gctx, permiso.AuditFilter{Since: &start,
			Actions: []string{oauth2.ActionLoginSuccess, oauth2.ActionTokenRefresh}})
		return err
	})
	g.Go(func() (err error) {
		rows, err = s.store.CountAuditEvents(gctx, permiso.AuditFilter{Since: &start, Actions: tokenActions},
			permiso.AuditGrouping{Day: true, Action: true})
		return err
	})
	if err := g.Wait(); err != nil {
		return Usage{}, err
	}
	u.Daily = make([]UsageDay, days)
	for i := range u.Daily {
		u.Daily[i].Date = start.AddDate(0, 0, i).Format(time.DateOnly)
	}
	for _, c := range rows {
		i := int(c.Day.Sub(start) / (24 * time.Hour))
		if i < 0 || i >= days {
			continue
		}
		d := &u.Daily[i]
		switch c.Action {
		case oauth2.ActionLoginSuccess:
			d.Logins += c.Count
			d.TokensIssued.Password += c.Count
		case oauth2.ActionLoginFailure:
			d.FailedLogins += c.Count
		case oauth2.ActionTokenRefresh:
			d.TokensIssued.RefreshToken += c.Count
		case oauth2.ActionTokenIssue:
			d.TokensIssued.ClientCredentials += c.Count
		}
	}
	for i := range u.Daily {
		d := &u.Daily[i]
		d.TokensIssued.Total = d.TokensIssued.Password + d.TokensIssued.RefreshToken + d.TokensIssued.ClientCredentials
		u.Auth.Logins += d.Logins
		u.Auth.FailedLogins += d.FailedLogins
		u.TokensIssued.Password += d.TokensIssued.Password
		u.TokensIssued.RefreshToken += d.TokensIssued.RefreshToken
		u.TokensIssued.ClientCredentials += d.TokensIssued.ClientCredentials
		u.TokensIssued.Total += d.TokensIssued.Total
	}
	return u, nil
}
