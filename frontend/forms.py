from django import forms
from django.utils.translation import gettext_lazy as _


class SignupForm(forms.Form):
    email = forms.EmailField(label=_("Email"))
    display_name = forms.CharField(label=_("Display name"), max_length=50)
    password = forms.CharField(
        label=_("Password"), widget=forms.PasswordInput, min_length=8
    )
