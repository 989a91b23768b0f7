import sys; sys.path.insert(0,'/work/attack-oidc')
from lib import *
C=cfg()
def browser_login(b,user,pw,xff=None):
    s=requests.Session()
    if xff: s.headers['X-Forwarded-For']=xff
    v,ch=pkce(); r=authorize(s,b,'trusted',RU,chal=ch); r2=login_form(s,b,r,user,pw)
    e=re.search(r'class="error"[^>]*>(.*?)<',r2.text,re.S)
    return r2.status_code,(e.group(1).strip() if e else r2.headers.get('Location','')[:40] or r2.text[:100])
# rate limit shared: instance 18104 (sqlite, 4/minute)
b='http://127.0.0.1:18104'
print('RL: pw grant x2:',[tok(b,'bob','Wrong-Passw0rd!x',).status_code for _ in range(2)])
print('RL: browser x3:',[browser_login(b,'bob','Wrong-Passw0rd!x') for _ in range(3)])
print('RL: pw grant after:',tok(b,'bob','Wrong-Passw0rd!x').status_code)
# lockout shared: sqlite + pg
for n in ['sqlite','pg']:
    b=BASES[n]; t=admin(b); U='l'+secrets.token_hex(3)
    requests.post(b+API+'/users',headers=H(t),json={'username':U,'email':U+'@example.com','password':USER_PW,'is_verified':True})
    a=[browser_login(b,U,'Wrong-Passw0rd!x',xff='10.9.%d.1'%i)[0] for i in range(3)]
    p=[tok(b,U,'Wrong-Passw0rd!x').status_code for _ in range(2)]
    print(n,'lockout: 3 browser + 2 grant fails',a,p,'| then grant right pw:',tok(b,U,USER_PW).status_code,tok(b,U,USER_PW).text[:80],'| browser right pw:',browser_login(b,U,USER_PW))
    # lock by browser only, then grant
    U2='m'+secrets.token_hex(3)
    requests.post(b+API+'/users',headers=H(t),json={'username':U2,'email':U2+'@example.com','password':USER_PW,'is_verified':True})
    a=[browser_login(b,U2,'Wrong-Passw0rd!x')[0] for i in range(5)]
    print(n,'5 browser fails',a,'then grant right:',tok(b,U2,USER_PW).status_code, 'browser by email right:',browser_login(b,U2+'@example.com',USER_PW))
