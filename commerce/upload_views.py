"""The client's upload pages: history, a new upload, and one upload's preview, mapping, errors and
progress. Every query is scoped with `for_tenant(request.tenant)`; the SuperAdmin pages in
commerce/admin.py reuse `job_page` for uploads on a client's behalf."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse, HttpResponseForbidden
from django.shortcuts import get_object_or_404, redirect, render

from tenants.api import WRITE_ROLES
from tenants.models import Membership
from tenants.views import tenant_required

from .models import ImportJob, ImportKind, ImportStatus
from .upload_formats import UploadError
from .uploads import STARTABLE, create_job, first_rows, max_upload_bytes, missing_required, start_import, targets

REFRESH_SECONDS = 3
READ_ONLY_MESSAGE = "Your role in this client is read-only: ask an editor to upload files."


class UploadForm(forms.Form):
    kind = forms.ChoiceField(label="What the file holds", choices=ImportKind.choices)
    file = forms.FileField(help_text="CSV, JSON (an array or JSON Lines) or XML.")


class MappingForm(forms.Form):
    """One select of the file's columns per field of the job's kind, pre-filled from the job."""

    day_first = forms.TypedChoiceField(
        label="Dates like 03/04/2025 are",
        choices=[("0", "month first (March 4)"), ("1", "day first (3 April)")],
        coerce=lambda value: value == "1",
        required=False,
    )
    import_valid_only = forms.BooleanField(
        label="Import the valid rows even if some rows are invalid",
        required=False,
        help_text="Otherwise nothing is imported while any row is invalid.",
    )

    def __init__(self, job: ImportJob, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.job = job
        columns = [("", "— not in the file —")] + [(column, column) for column in job.columns]
        for target in targets(job.kind):
            self.fields[f"map_{target.name}"] = forms.ChoiceField(
                label=target.label, choices=columns, required=False, initial=job.mapping.get(target.name, "")
            )
        self.fields["day_first"].initial = "1" if job.day_first else "0"
        self.fields["import_valid_only"].initial = job.import_valid_only

    def target_fields(self) -> list[forms.BoundField]:
        return [self[f"map_{target.name}"] for target in targets(self.job.kind)]

    def mapping(self) -> dict[str, str]:
        return {
            target.name: self.cleaned_data[f"map_{target.name}"]
            for target in targets(self.job.kind)
            if self.cleaned_data.get(f"map_{target.name}")
        }

    def clean(self) -> dict:
        cleaned = super().clean()
        missing = missing_required(self.job.kind, self.mapping()) if not self.errors else []
        if missing:
            raise forms.ValidationError(f"Choose the file's column for: {', '.join(missing)}.")
        return cleaned


def can_upload(request: HttpRequest) -> bool:
    role = Membership.objects.for_tenant(request.tenant).filter(user=request.user).values_list("role", flat=True)
    return role.first() in WRITE_ROLES


@tenant_required
def upload_list(request: HttpRequest) -> HttpResponse:
    jobs = ImportJob.objects.for_tenant(request.tenant).select_related("created_by")
    page = Paginator(jobs, 50).get_page(request.GET.get("page"))
    return render(request, "uploads/list.html", {"page": page, "can_upload": can_upload(request)})


@tenant_required
def upload_new(request: HttpRequest) -> HttpResponse:
    if not can_upload(request):
        return HttpResponseForbidden(READ_ONLY_MESSAGE)
    form = UploadForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        try:
            job = create_job(
                request.tenant, form.cleaned_data["file"], form.cleaned_data["kind"], user=request.user, request=request
            )
        except UploadError as error:
            form.add_error("file", str(error))
        else:
            return redirect("uploads:detail", pk=job.pk)
    context = {"form": form, "max_megabytes": max_upload_bytes() // (1024 * 1024)}
    return render(request, "uploads/new.html", context, status=400 if form.errors else 200)


@tenant_required
def upload_detail(request: HttpRequest, pk: int) -> HttpResponse:
    job = get_object_or_404(ImportJob.objects.for_tenant(request.tenant).select_related("tenant", "created_by"), pk=pk)
    editable = can_upload(request)
    if request.method == "POST" and not editable:
        return HttpResponseForbidden(READ_ONLY_MESSAGE)
    return job_page(request, job, editable=editable, template="uploads/detail.html")


def job_page(
    request: HttpRequest, job: ImportJob, *, editable: bool, template: str, extra: dict | None = None
) -> HttpResponse:
    """One upload: preview, mapping form (while it can start), errors and progress. A valid
    POST of the mapping form queues the import and comes back here."""
    form = None
    if editable and job.status in STARTABLE:
        form = MappingForm(job, request.POST or None)
        if request.method == "POST" and form.is_valid():
            started = start_import(
                job,
                form.mapping(),
                day_first=form.cleaned_data["day_first"] or False,
                valid_only=form.cleaned_data["import_valid_only"],
                user=request.user,
                request=request,
            )
            if started:
                messages.success(request, "The import has started; this page follows its progress.")
            return redirect(request.path)
    context = {"job": job, "form": form, "editable": editable, **_preview(job), **(extra or {})}
    context["statuses"] = ImportStatus
    response = render(request, template, context, status=400 if form is not None and form.errors else 200)
    if job.is_running:
        # Browsers reload a page sent with this header, as with <meta http-equiv="refresh">.
        response["Refresh"] = str(REFRESH_SECONDS)
    return response


def _preview(job: ImportJob) -> dict:
    if job.status == ImportStatus.DONE:
        return {"preview": []}
    try:
        rows = first_rows(job)
    except (UploadError, OSError) as error:
        return {"preview": [], "preview_error": str(error) if isinstance(error, UploadError) else "File not found."}
    return {"preview": [(number, [data.get(column, "") for column in job.columns]) for number, data in rows]}
