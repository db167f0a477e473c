#!/usr/bin/python3
"""Fit the polynomial coefficients of model/vmath.h (vm_expf, vm_erff) and
print their float32-evaluated accuracy.  Needs numpy."""
import numpy as np, math
f32=np.float32
erf=np.vectorize(math.erf); erfc=np.vectorize(math.erfc)
ln2=math.log(2)
def horner(c, t):
    acc=f32(c[0])
    for k in c[1:]: acc=f32(acc*t)+f32(k); acc=f32(acc)
    return acc
# exp
r=np.linspace(-ln2/2,ln2/2,20001); r=r[r!=0]
p_exp=[f32(c) for c in np.polyfit(r,(np.exp(r)-1-r)/r**2,5)]
def vexp(x):
    x=f32(x)
    n=np.rint(f32(x*f32(1.44269504088896341)))
    rr=f32(f32(x-f32(n*f32(0.693359375)))-f32(n*f32(-2.12194440e-4)))
    p=horner(p_exp, rr)
    e=f32(f32(f32(rr*rr)*p)+rr)+f32(1)
    return f32(e*f32(2.0)**n)
xs=np.linspace(-87,88,2000001).astype(np.float32)
ref=np.exp(xs.astype(np.float64))
got=vexp(xs)
ulp=np.abs(got.astype(np.float64)-ref)/np.spacing(ref.astype(np.float32)).astype(np.float64)
print('exp max ulp', ulp.max())
# erf small on [0,1]
xs=np.linspace(1e-6,1.0,20001)
p_es=[f32(c) for c in np.polyfit(xs**2, erf(xs)/xs, 6)]
# erf large on [1,4], variable u=(2x-5)/3
xs=np.linspace(1.0,4.0,20001)
u=(2*xs-5)/3
p_el=[f32(v) for v in np.polyfit(u, erfc(xs)*np.exp(xs**2), 12)]
def verf(x):
    x=f32(x); ax=np.abs(x)
    s=horner(p_es, f32(ax*ax)); small=f32(ax*s)
    uu=f32(f32(f32(2)*np.minimum(ax,f32(4)))-f32(5))/f32(3); uu=f32(uu)
    q=horner(p_el,uu)
    axc=np.minimum(ax,f32(4))
    large=f32(1)-f32(q*vexp(f32(-f32(axc*axc))))
    large=np.where(ax>=4, f32(1), large)
    r=np.where(ax<1, small, large)
    return np.copysign(r, x).astype(np.float32)
xs=np.linspace(-6,6,2000001).astype(np.float32)
ref=erf(xs.astype(np.float64))
got=verf(xs)
print('erf max abs err', np.max(np.abs(got-ref)))
print('coef exp', [float(c) for c in p_exp])
print('coef erf small', [float(c) for c in p_es])
print('coef erf large', [float(c) for c in p_el])
