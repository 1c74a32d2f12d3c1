//! The hand-off between Polars' Arrow implementation and arrow-rs, through the Arrow C Data
//! Interface: the buffers are shared, not copied. This is the crate's only unsafe code.
#![allow(unsafe_code)]

use arrow::array::{ArrayRef, make_array};
use arrow::ffi::{FFI_ArrowArray, FFI_ArrowSchema, from_ffi};
use dala_dataset::{Error, Result};

// Both sides are the `#[repr(C)]` structs of the Arrow C Data Interface specification.
const _: () = {
    assert!(
        std::mem::size_of::<polars_arrow::ffi::ArrowArray>()
            == std::mem::size_of::<FFI_ArrowArray>()
    );
    assert!(
        std::mem::align_of::<polars_arrow::ffi::ArrowArray>()
            == std::mem::align_of::<FFI_ArrowArray>()
    );
    assert!(
        std::mem::size_of::<polars_arrow::ffi::ArrowSchema>()
            == std::mem::size_of::<FFI_ArrowSchema>()
    );
    assert!(
        std::mem::align_of::<polars_arrow::ffi::ArrowSchema>()
            == std::mem::align_of::<FFI_ArrowSchema>()
    );
};

/// A Polars Arrow array as an arrow-rs array, sharing its buffers.
pub(crate) fn to_arrow_rs(
    name: &str,
    array: Box<dyn polars_arrow::array::Array>,
) -> Result<ArrayRef> {
    let field = polars_arrow::datatypes::Field::new(name.into(), array.dtype().clone(), true);
    let schema = polars_arrow::ffi::export_field_to_c(&field);
    let array = polars_arrow::ffi::export_array_to_c(array);
    // SAFETY: `ArrowArray`/`FFI_ArrowArray` and `ArrowSchema`/`FFI_ArrowSchema` are the same
    // C structs (checked above for size and alignment); ownership, with the release
    // callbacks that free the buffers, moves to arrow-rs, and nothing is released twice
    // because the Polars values are consumed by the transmute.
    let (array, schema) = unsafe {
        (
            std::mem::transmute::<polars_arrow::ffi::ArrowArray, FFI_ArrowArray>(array),
            std::mem::transmute::<polars_arrow::ffi::ArrowSchema, FFI_ArrowSchema>(schema),
        )
    };
    // SAFETY: the structs were just exported by Polars and describe a valid array.
    let data = unsafe { from_ffi(array, &schema) }.map_err(|e| Error::Engine {
        engine: "polars".into(),
        message: format!("column `{name}` could not be handed to arrow-rs: {e}"),
    })?;
    Ok(make_array(data))
}

/// An arrow-rs array (with its field) as a Polars Arrow array, sharing its buffers.
pub(crate) fn to_polars(
    field: &arrow::datatypes::Field,
    array: &ArrayRef,
) -> Result<(
    polars_arrow::datatypes::Field,
    Box<dyn polars_arrow::array::Array>,
)> {
    let failed = |e: &dyn std::fmt::Display| Error::Engine {
        engine: "polars".into(),
        message: format!(
            "column `{}` could not be handed to polars: {e}",
            field.name()
        ),
    };
    let (array, _) = arrow::ffi::to_ffi(&array.to_data()).map_err(|e| failed(&e))?;
    let schema = FFI_ArrowSchema::try_from(field).map_err(|e| failed(&e))?;
    // SAFETY: the same C structs as above; ownership, with arrow-rs's release callbacks,
    // moves to Polars, and the arrow-rs values are consumed by the transmute.
    let (array, schema) = unsafe {
        (
            std::mem::transmute::<FFI_ArrowArray, polars_arrow::ffi::ArrowArray>(array),
            std::mem::transmute::<FFI_ArrowSchema, polars_arrow::ffi::ArrowSchema>(schema),
        )
    };
    // SAFETY: the structs were just exported by arrow-rs and describe a valid array.
    let field =
        unsafe { polars_arrow::ffi::import_field_from_c(&schema) }.map_err(|e| failed(&e))?;
    // SAFETY: as above; the data type is the one the schema struct describes.
    let array = unsafe { polars_arrow::ffi::import_array_from_c(array, field.dtype().clone()) }
        .map_err(|e| failed(&e))?;
    Ok((field, array))
}
